"""Trains each fusion on Shapes ITM, times it, and prints the README's results table.

    python benchmarks/shapes_itm.py --preset tiny                  # the quickstart recipe
    python benchmarks/shapes_itm.py --preset small --epochs 12 --train-scenes 40000

Wall-clock seconds cover data generation, training and test evaluation (not
installation). Results are also written as JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import gemini_tf
from gemini_tf.evaluation import format_table

COLUMNS = [
    "random",
    "hard",
    "acc_positive",
    "acc_random",
    "acc_colour",
    "acc_shape",
    "acc_size",
    "acc_count",
    "acc_relation",
    "acc_swap",
    "roc_auc",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--fusions", nargs="+", default=["cross_attention", "concat"])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--train-scenes", type=int, default=16000)
    parser.add_argument("--test-scenes", type=int, default=1000)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--out", default=None, help="JSON results file")
    args = parser.parse_args()

    rows, timings = {}, {}
    for fusion in args.fusions:
        with tempfile.TemporaryDirectory() as output_dir:
            start = time.perf_counter()
            bundle = gemini_tf.train(
                output_dir,
                preset=args.preset,
                fusion=fusion,
                epochs=args.epochs,
                train_scenes=args.train_scenes,
                learning_rate=args.learning_rate,
                verbose=2,
            )
            metrics = gemini_tf.evaluate_shapes(bundle, "test", args.test_scenes)
            timings[fusion] = time.perf_counter() - start
        name = f"{args.preset}/{fusion}"
        rows[name] = {k: metrics[k] for k in COLUMNS if k in metrics}
        print(f"{name}: {timings[fusion]:.0f} s, {bundle.model.count_params():,} parameters", flush=True)

    print(format_table(rows))
    print("| model | seconds | " + " | ".join(COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for name, row in rows.items():
        cells = [f"{100 * row[c]:.1f}" if c in row else "-" for c in COLUMNS]
        print(f"| {name} | {timings[name.split('/')[1]]:.0f} | " + " | ".join(cells) + " |")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "seconds": timings, "metrics": rows}, f, indent=2)


if __name__ == "__main__":
    main()
