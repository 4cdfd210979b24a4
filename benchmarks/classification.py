"""Binary classification of image+text pairs: gemini_tf vs baselines trained on the same data.

Models: majority class, TF-IDF word n-grams + LogisticRegression, text only,
image only (gemini_tf encoders + a sigmoid head), and gemini_tf with each
fusion. Same parts, vocabulary size, epochs, batch size and optimizer for
every Keras model; all are trained by `gemini_tf.train` (baselines swap the
model with `build_model`).

    python benchmarks/classification.py --data nlvr   # train dev dirs 0-4, validate dir 5, report test
    python benchmarks/classification.py --data shapes # Shapes yes/no statements, report the test split

On Shapes the baselines train with binary cross-entropy on every statement of
the training scenes (true ones and all their one-difference false ones), and
gemini_tf trains listwise on groups of the same statements (`--shapes-matching
listwise`, the package's default for Shapes; `binary` for plain BCE).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import gemini_tf
from gemini_tf.baselines.classifiers import image_only_model, majority_baseline, text_only_model, tfidf_baseline
from gemini_tf.config import FUSIONS
from gemini_tf.data import shapes
from gemini_tf.data.paths import data_dir
from gemini_tf.data.sources import ShapesSource, open_source
from gemini_tf.evaluation import binary_metrics, consistency, predict_dataset, vote_accuracy

from results_file import merge_results

BASELINES = {"text_only": text_only_model, "image_only": image_only_model}
MODELS = ("majority", "tfidf", *BASELINES, *FUSIONS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=("nlvr", "shapes"), default="nlvr")
    parser.add_argument("--data-path", default=None, help="NLVR folder (default: $GEMINI_TF_DATA/nlvr)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--image-size", type=int, default=None, help="height (NLVR width is 4x)")
    parser.add_argument("--sequence-length", type=int, default=None)
    parser.add_argument("--train-scenes", type=int, default=8000)
    parser.add_argument("--shapes-matching", choices=("listwise", "binary"), default="listwise")
    parser.add_argument("--output-dir", default="saved_models/classification")
    parser.add_argument("--results", default=None)
    args = parser.parse_args()
    results_path = args.results or f"benchmarks/results/classification_{args.data}.json"

    if args.data == "shapes":
        size = args.image_size or 64
        image_size, sequence_length = (size, size), args.sequence_length or 12
        scenes = {"train": args.train_scenes, "validation": 1000}
        baseline_data = ShapesSource(statements=True, scenes=scenes, image_size=size, negatives="all")
        gemini_data = ShapesSource(
            statements=True,
            scenes=scenes,
            image_size=size,
            negatives="all" if args.shapes_matching == "binary" else "sample",
        )
        test = shapes.make_pairs(1000, "test", 0, size, statements=True)
    else:
        height = args.image_size or 64
        image_size, sequence_length = (height, 4 * height), args.sequence_length or 32
        baseline_data = gemini_data = open_source(data_dir("nlvr", args.data_path))
        test = baseline_data.pairs("test")
    train_labels, test_labels = baseline_data.pairs("train").labels, test.labels
    results = {"settings": vars(args), "train_examples": len(train_labels), "test_examples": len(test_labels)}

    def report(name, probabilities, minutes=0.0, parameters=None):
        row = {**binary_metrics(test_labels, probabilities), "train_minutes": minutes}
        if args.data == "nlvr":
            row["sentence_accuracy"] = vote_accuracy(test_labels, probabilities, test.groups)
            row["consistency"] = consistency(test_labels, probabilities, test.groups)
        if parameters:
            row["parameters"] = parameters
        results[name] = row
        print(name, json.dumps(row), flush=True)

    for name in args.models:
        start = time.time()
        if name == "majority":
            report(name, np.full(len(test_labels), majority_baseline(train_labels)))
            continue
        if name == "tfidf":
            tfidf = tfidf_baseline().fit(baseline_data.pairs("train").texts, train_labels)
            report(name, tfidf.predict_proba(test.texts)[:, 1], (time.time() - start) / 60)
            continue
        baseline = name in BASELINES
        bundle = gemini_tf.train(
            os.path.join(args.output_dir, args.data, name),
            baseline_data if baseline else gemini_data,
            task="classify",
            matching="binary" if baseline or args.data == "nlvr" else args.shapes_matching,
            preset=args.preset,
            fusion="cross_attention" if baseline else name,
            config_overrides={"image_size": image_size, "sequence_length": sequence_length, "dropout": args.dropout},
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            verbose=2,
            **({"build_model": BASELINES[name]} if baseline else {}),
        )
        minutes = (time.time() - start) / 60
        _, probabilities = predict_dataset(bundle.model, test.dataset(bundle.preprocessor, image_size, 128))
        report(name, probabilities, minutes, bundle.model.count_params())

    merge_results(results_path, results)


if __name__ == "__main__":
    main()
