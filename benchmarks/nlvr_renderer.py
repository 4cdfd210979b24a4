"""The NLVR-world generator against real NLVR v1: renderer faithfulness, scene statistics, speed.

    taskset -c 1 python benchmarks/nlvr_renderer.py            # data from $GEMINI_TF_DATA/nlvr
    taskset -c 1 python benchmarks/nlvr_renderer.py --data ../shared/data/nlvr

1. Faithfulness: every dev and test sentence's `structured_rep`, drawn by
   `render_scene` in the box order of each of its six renderings, against the
   official PNG read as RGB like the loader reads it (`decode_image` keeps three
   channels and drops alpha; the PNGs are opaque, which is checked). Reports the
   share of pixels within `--tolerance` levels on every channel, the exact share,
   the worst images, and for k > 0 the share had the boxes been left in
   `structured_rep` order (to show the box orders matter).
2. Scene statistics of the dev split (objects per box, tower heights, shapes,
   colours, sizes, edge contact) next to those of `sample_scenes`.
3. Speed on one core (pin with taskset): scenes sampled, scenes rendered and
   (scene, statement, label) triples made per second; and the share of generated
   labels that `nlvr_statements.evaluate` confirms from the text alone.
"""

from __future__ import annotations

import argparse
import collections
import re

import numpy as np
from PIL import Image

from gemini_tf.data import nlvr_statements, nlvr_world
from gemini_tf.data.nlvr import load_nlvr
from gemini_tf.data.paths import data_dir

from results_file import best_of, merge_results


def rendering_index(image_path: str) -> int:
    """k of `<split>-<identifier>-<k>.png`."""
    return int(image_path.rsplit("-", 1)[1].removesuffix(".png"))


def faithfulness(path: str, splits: list[str], tolerance: int) -> dict:
    within, exact, unpermuted, worst = collections.defaultdict(list), [], collections.defaultdict(list), []
    translucent = 0
    for split in splits:
        scenes = nlvr_world.load_scenes(split, path)
        records, _ = load_nlvr(path, split)
        for record in records:
            k, scene = rendering_index(record.image), scenes[record.image_id]
            png = np.asarray(Image.open(record.image))
            translucent += png.shape[-1] == 4 and bool(np.any(png[..., 3] < 255))
            official = png[..., :3].astype(np.int16)
            difference = np.abs(nlvr_world.render_scene(scene.permuted(k)) - official).max(axis=-1)
            within[k].append(float(np.mean(difference <= tolerance)))
            exact.append(float(np.mean(difference == 0)))
            worst.append((within[k][-1], f"{split}-{record.image_id}-{k}"))
            if k:
                as_listed = np.abs(nlvr_world.render_scene(scene) - official).max(axis=-1)
                unpermuted[k].append(float(np.mean(as_listed <= tolerance)))
    shares = [s for k in sorted(within) for s in within[k]]
    return {
        "images": len(shares),
        "tolerance": tolerance,
        "share_within": float(np.mean(shares)),
        "share_exact": float(np.mean(exact)),
        "share_within_rendering_0": float(np.mean(within[0])),
        "share_within_by_k": {k: float(np.mean(within[k])) for k in sorted(within)},
        "share_within_by_k_boxes_as_listed": {k: float(np.mean(unpermuted[k])) for k in sorted(unpermuted)},
        "images_below_98_percent": int(sum(s < 0.98 for s in shares)),
        "worst": [{"image": name, "share_within": share} for share, name in sorted(worst)[:5]],
        "images_with_transparent_pixels": translucent,
    }


def statistics(scenes: list[nlvr_world.Scene]) -> dict:
    """What `sample_scenes` should match: shares and distributions of a list of scenes."""
    towers = [s for s in scenes if s.is_tower]
    free_boxes = [box for s in scenes if not s.is_tower for box in s.boxes]
    items = [item for box in free_boxes for item in box]

    def shares(values) -> dict:
        counts = collections.Counter(values)
        return {str(k): round(counts[k] / sum(counts.values()), 3) for k in sorted(counts)}

    return {
        "scenes": len(scenes),
        "tower_share": round(len(towers) / len(scenes), 3),
        "objects_per_free_box": shares(len(box) for box in free_boxes),
        "tower_heights": shares(len(box) for s in towers for box in s.boxes),
        "shapes": shares(item.shape for item in items),
        "colours": shares(item.colour for item in items),
        "sizes": shares(item.size for item in items),
        "tower_colours": shares(item.colour for s in towers for box in s.boxes for item in box),
        "touching_edge": round(float(np.mean([item.touching_edge for item in items])), 3),
        "touching_bottom": round(float(np.mean([item.touching_bottom for item in items])), 3),
    }


def speed(num_scenes: int) -> dict:
    rng = np.random.default_rng(0)
    scenes = nlvr_world.sample_scenes(num_scenes, rng)
    sample_s = best_of(lambda: nlvr_world.sample_scenes(num_scenes, rng))
    render_s = best_of(lambda: [nlvr_world.render_scene(s) for s in scenes])
    examples_s = best_of(lambda: nlvr_statements.make_examples(num_scenes, rng))
    return {
        "scenes": num_scenes,
        "scenes_sampled_per_s": round(num_scenes / sample_s),
        "scenes_rendered_per_s": round(num_scenes / render_s),
        "statements_per_s": round(2 * num_scenes / examples_s),  # with the scenes they are about
    }


def template(text: str) -> str:
    """The sentence with its words for numbers, colours, sizes and shapes replaced by placeholders."""
    slots = {
        "NUMBER": nlvr_statements.NUMBER_WORDS,
        "COLOUR": nlvr_world.COLOUR_NAMES,
        "SIZE": tuple(nlvr_statements.SIZE_WORDS.values()),
        "SHAPE": (*nlvr_world.SHAPES, "object", "block"),
    }
    for name, words in slots.items():
        text = re.sub(rf"\b({'|'.join(words)})s?\b", name, text)
    return re.sub(r"touching the (edge|wall|bottom)", "touching the SIDE", re.sub(r"\ban\b", "a", text))


def label_check(num_scenes: int) -> dict:
    examples = nlvr_statements.make_examples(num_scenes, np.random.default_rng(1))
    agree = [nlvr_statements.evaluate(text, scene.to_rep()) == label for scene, text, label in examples]
    templates = collections.Counter(template(text) for _, text, _ in examples)
    return {
        "statements": len(examples),
        "labels_confirmed": float(np.mean(agree)),
        "true_share": float(np.mean([label for _, _, label in examples])),
        "distinct_statements": len({text for _, text, _ in examples}),
        "distinct_templates": len(templates),
        "most_common_templates": dict(templates.most_common(10)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="NLVR folder (default: $GEMINI_TF_DATA/nlvr)")
    parser.add_argument("--splits", nargs="+", default=["dev", "test"])
    parser.add_argument("--tolerance", type=int, default=8, help="levels per channel")
    parser.add_argument("--speed-scenes", type=int, default=2000)
    parser.add_argument("--results", default="benchmarks/results/nlvr_renderer.json")
    args = parser.parse_args()

    results = {"settings": vars(args)}
    sampled = nlvr_world.sample_scenes(3000, np.random.default_rng(0))
    try:
        path = data_dir("nlvr", args.data)
    except FileNotFoundError as error:
        print(f"skipping faithfulness and dev statistics: {error}")
        results["sampled_statistics"] = statistics(sampled)
    else:
        results["faithfulness"] = faithfulness(path, args.splits, args.tolerance)
        print("faithfulness", results["faithfulness"], flush=True)
        dev = list(nlvr_world.load_scenes("dev", path).values())
        results["statistics"] = {"dev": statistics(dev), "sampled": statistics(sampled)}
        for key, value in results["statistics"]["dev"].items():
            print(f"{key:22s} dev {value}\n{'':22s} sampled {results['statistics']['sampled'][key]}")
    results["speed_one_core"] = speed(args.speed_scenes)
    print("speed", results["speed_one_core"])
    results["labels"] = label_check(5000)
    print("labels", results["labels"])
    merge_results(args.results, results)


if __name__ == "__main__":
    main()
