"""Image description: train a captioner, score it against two baselines, time it.

Flickr8k (`dev`): BLEU-1..4 and CIDEr (pycocoevalcap) of greedy and beam-4
captions, next to the nearest-neighbour caption and the most frequent training
caption, scored the same way (`gemini_tf.caption_evaluation`). Shapes (test
split, 1000 scenes): share of captions true of their scene by the generator's
own truth function, and share naming every object of 1-2-object scenes. With
`--rerank MATCHER`, also the beams re-ranked by a matching model (`describe(rerank=...)`).
Latency per caption (batch 1; greedy and beam 4): the Keras model
(`bundle.describe`), the exported SavedModel's `describe` / `describe_beam`
signatures on PNG bytes, and the dynamic-range TFLite file (greedy).

    python benchmarks/captioning.py --data shapes --epochs 10 --learning-rate 1e-3
    python benchmarks/captioning.py --data flickr8k --init saved_models/flickr8k/gemini --epochs 8
    python benchmarks/captioning.py --data flickr8k --skip-train   # re-score saved_models/captioning/flickr8k
    python benchmarks/captioning.py --data shapes --skip-train --rerank saved_models/small_grounded
    python benchmarks/captioning.py --data shapes --all-combinations --name shapes_all_combinations ...

Results go to benchmarks/results/captioning.json, one entry per dataset (or per `--name`), merged.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time

import numpy as np
import tensorflow as tf

from gemini_tf.bundle import load
from gemini_tf.caption_evaluation import baseline_scores, evaluate_descriptions
from gemini_tf.data.paths import data_dir
from gemini_tf.data.sources import ShapesSource, open_source
from gemini_tf.export.saved_model import export_saved_model
from gemini_tf.export.tflite import Captioner, export_tflite
from gemini_tf.training import train

from results_file import best_of, merge_results

SAMPLERS = ("greedy", "beam")


def latency_ms(bundle, images: np.ndarray) -> dict:
    """Milliseconds per caption at batch 1 (best of 3 passes over `images`)."""
    out = {}
    for sampler in SAMPLERS:
        bundle.describe(images[:1], sampler=sampler)  # compile
        seconds = best_of(lambda s=sampler: [bundle.describe(image[None], sampler=s) for image in images])
        out[f"keras_{sampler}"] = 1000 * seconds / len(images)
    export_dir = tempfile.mkdtemp()
    try:
        path = export_saved_model(bundle, "captioner", export_dir)
        signatures = tf.saved_model.load(path).signatures
        encoded = [tf.constant([tf.io.encode_png(image).numpy()]) for image in images]
        for sampler, name in zip(SAMPLERS, ("describe", "describe_beam")):
            signature = signatures[name]
            signature(image_bytes=encoded[0])
            seconds = best_of(lambda f=signature: [f(image_bytes=data) for data in encoded])
            out[f"saved_model_{sampler}"] = 1000 * seconds / len(images)
        (tflite_path,) = export_tflite(path, os.path.join(export_dir, "tflite"), ("dynamic",))
        lite = Captioner(tflite_path)
        seconds = best_of(lambda: lite.token_ids(images))
        out["tflite_dynamic_greedy"] = 1000 * seconds / len(images)
        out["tflite_dynamic_mb"] = os.path.getsize(tflite_path) / 1e6
        out["tflite_same_as_keras"] = float(
            np.mean(np.asarray(lite.describe(images)) == np.asarray(bundle.describe(images)))
        )
    finally:
        shutil.rmtree(export_dir, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=("shapes", "flickr8k"), required=True)
    parser.add_argument("--path", default=None, help="the Flickr8k folder (default: $GEMINI_TF_DATA/flickr8k)")
    parser.add_argument(
        "--all-combinations",
        action="store_true",
        help="Shapes: train on every colour-shape combination (ShapesSource(hold_out=False)); same test scenes",
    )
    parser.add_argument("--init", default=None, help="a matching bundle whose image encoder the captioner starts from")
    parser.add_argument("--rerank", default=None, help="also score beams re-ranked by this matching bundle")
    parser.add_argument("--rerank-beams", type=int, default=8)
    parser.add_argument("--preset", default=None)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--decoder-layers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="training seed (weights, order); scenes stay seed 0")
    parser.add_argument("--output-dir", default="saved_models/captioning")
    parser.add_argument("--skip-train", action="store_true", help="score the bundle already in --output-dir")
    parser.add_argument("--results", default="benchmarks/results/captioning.json")
    parser.add_argument("--name", default=None, help="the results entry (default: --data)")
    args = parser.parse_args()

    name = args.name or args.data
    output_dir = os.path.join(args.output_dir, name)
    if args.data == "shapes":
        data = ShapesSource(
            scenes={"train": 16000, "validation": 1000, "test": 1000}, hold_out=not args.all_combinations
        )
        part = "test"
    else:
        data = open_source(data_dir("flickr8k", args.path))
        part = data.held_out_part
    entry = {}
    if args.skip_train and os.path.isfile(args.results):  # keep the training run's record
        with open(args.results) as f:
            entry = json.load(f).get(name, {})
    if not args.skip_train:
        start = time.perf_counter()
        train(
            output_dir,
            data,
            task="describe",
            preset=args.preset,
            init=args.init,
            config_overrides={"decoder_layers": args.decoder_layers},
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            seed=args.seed,
            verbose=2,
        )
        entry["train_minutes"] = (time.perf_counter() - start) / 60
        entry["settings"] = {
            key: value for key, value in vars(args).items() if key not in ("skip_train", "results", "name")
        }
    bundle = load(output_dir)
    entry["parameters"] = int(bundle.model.count_params())
    entry["part"] = part
    for sampler in SAMPLERS:
        entry[sampler] = evaluate_descriptions(bundle, data, part, sampler=sampler)
        print(sampler, entry[sampler], flush=True)
    if args.data == "shapes":  # what variants are compared on
        entry["beam_validation"] = evaluate_descriptions(bundle, data, "validation", sampler="beam")
        print("beam validation", entry["beam_validation"], flush=True)
    if args.rerank:
        matcher = load(args.rerank)
        for split in (part, "validation"):  # the beam count was chosen on validation
            entry[f"beam_rerank_{split}"] = evaluate_descriptions(
                bundle, data, split, num_beams=args.rerank_beams, rerank=matcher
            )
            print(f"rerank {split}", entry[f"beam_rerank_{split}"], flush=True)
        entry["rerank"] = {"matcher": args.rerank, "beams": args.rerank_beams}
    if args.data != "shapes":
        entry.update(baseline_scores(bundle, data, part))
        print({k: entry[k] for k in ("nearest_neighbour", "most_frequent")}, flush=True)
    images = data.captions(part).pixels(bundle.config.image_size)[:20]
    entry["latency_ms"] = latency_ms(bundle, images)
    print(entry["latency_ms"], flush=True)
    merge_results(args.results, {name: entry})


if __name__ == "__main__":
    main()
