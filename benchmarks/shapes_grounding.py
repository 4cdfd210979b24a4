"""Grounding on Shapes: trains (or loads) a model, then measures what the README's grounding table reports.

* per negative kind on the test split, drawn by the default renderer and by the
  shifted one (objects off the grid cells, other sizes, shades, background);
* systematic generalisation: the balanced scores on test scenes whose true
  caption uses only combinations seen in training vs held-out ones;
* word->object attention: the share of a colour / shape word's attention on
  the object it names (`evaluation.word_object_attention`), and chance;
* a linear probe of the image encoder's patch states: does each cell still
  know its colour, shape and whether it holds an object?

    python benchmarks/shapes_grounding.py --preset tiny --fusion grounded          # the quickstart recipe
    python benchmarks/shapes_grounding.py --model saved_models/quickstart          # measure a saved model
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from shapes_itm import COLUMNS as MATCHING_COLUMNS
from sklearn.linear_model import LogisticRegression

import gemini_tf
from gemini_tf.data import shapes
from gemini_tf.evaluation import evaluate_shapes, format_table, word_object_attention
from gemini_tf.preprocessing import preprocess_images

from results_file import merge_results

# The matching table's columns (without ROC AUC), then seen / held-out combinations.
SPLIT_COLUMNS = ["random_seen", "hard_seen", "random_held_out", "hard_held_out"]
COLUMNS = [c for c in MATCHING_COLUMNS if c != "roc_auc"] + SPLIT_COLUMNS


def probe_patch_states(bundle, scenes: int = 1500, seed: int = 0) -> dict[str, float]:
    """Test accuracy of logistic-regression probes from each patch state to its cell's content."""
    config = bundle.config
    drawn = shapes.generate_scenes(scenes, "validation", seed)
    images = preprocess_images(shapes.render(drawn, config.image_size[0]), config.image_size)
    states = np.asarray(bundle.model.image_encoder.predict(images, verbose=0)["sequence"])  # [n, cells, d]
    rows, columns = config.grid_size
    colour = np.full((len(drawn), rows * columns), -1)
    shape = np.full((len(drawn), rows * columns), -1)
    coverage = shapes.patch_coverage(drawn, config.image_size[0], config.grid_size)  # [n, K, cells]
    for k in range(shapes.MAX_OBJECTS):
        inside = coverage[:, k]
        colour[inside] = np.repeat(drawn.colour[:, k][:, None], rows * columns, 1)[inside]
        shape[inside] = np.repeat(drawn.shape[:, k][:, None], rows * columns, 1)[inside]
    x = states.reshape(-1, states.shape[-1])
    half = len(x) // 2
    result = {}
    for name, target in (("occupied", (colour >= 0).astype(int)), ("colour", colour), ("shape", shape)):
        y = target.reshape(-1)
        keep = np.ones(len(y), bool) if name == "occupied" else y >= 0
        train, test = keep.copy(), keep.copy()
        train[half:], test[:half] = False, False
        probe = LogisticRegression(max_iter=2000).fit(x[train], y[train])
        result[f"probe_{name}"] = float(probe.score(x[test], y[test]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a saved bundle to measure instead of training")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--fusion", default="grounded")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--train-scenes", type=int, default=16000)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--test-scenes", type=int, default=1000)
    parser.add_argument("--output-dir", default=None)
    parser.add_argument("--results", default="benchmarks/results/shapes_grounding.json")
    parser.add_argument("--name", default=None, help="row name in the results file")
    args = parser.parse_args()

    start = time.time()
    if args.model:
        bundle = gemini_tf.load(args.model)
        train_seconds = None
    else:
        output_dir = args.output_dir or f"saved_models/grounding_{args.preset}_{args.fusion}"
        bundle = gemini_tf.train(
            output_dir,
            preset=args.preset,
            fusion=args.fusion,
            epochs=args.epochs,
            train_scenes=args.train_scenes,
            learning_rate=args.learning_rate,
            verbose=2,
        )
        train_seconds = time.time() - start
    default = evaluate_shapes(bundle, "test", args.test_scenes)
    eval_seconds = time.time() - start - (train_seconds or 0)
    shifted = evaluate_shapes(bundle, "test", args.test_scenes, style="shifted")
    attention = word_object_attention(bundle) if hasattr(bundle.model.fusion, "attention_maps") else {}
    row = {
        "parameters": bundle.model.count_params(),
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
        "default": {k: default[k] for k in COLUMNS if k in default},
        "shifted": {k: shifted[k] for k in COLUMNS if k in shifted},
        **attention,
        **probe_patch_states(bundle),
    }
    name = args.name or (
        os.path.basename(os.path.normpath(args.model)) if args.model else f"{args.preset}/{args.fusion}"
    )
    print(format_table({f"{name} default": row["default"], f"{name} shifted": row["shifted"]}))
    print(json.dumps({k: v for k, v in row.items() if k not in ("default", "shifted")}, indent=2))
    merge_results(args.results, {name: {"settings": vars(args), **row}})


if __name__ == "__main__":
    main()
