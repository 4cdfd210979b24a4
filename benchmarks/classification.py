"""Binary classification of image+text pairs: gemini_tf vs baselines trained on the same data.

Models: majority class, TF-IDF word n-grams + LogisticRegression, text only,
image only (gemini_tf encoders + a sigmoid head), gemini_tf concat and
gemini_tf cross_attention. Same splits, vocabulary size, epochs, batch size
and optimizer for every Keras model.

    python benchmarks/classification.py --data nlvr   # train dev (dirs 0-4), validate dir 5, report test
    python benchmarks/classification.py --data shapes # Shapes yes/no statements, report test split

On Shapes the baselines train with binary cross-entropy on every statement of
the training scenes (true ones and all their one-difference false ones), and
gemini_tf trains listwise on groups of the same statements (`matching="groups"`,
the package's default for Shapes; `--shapes-matching pairs` for plain BCE).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import gemini_tf
from gemini_tf.baselines.classifiers import (
    image_only_model, majority_baseline, text_only_model, tfidf_baseline,
)
from gemini_tf.data import shapes
from gemini_tf.data.nlvr import load_nlvr
from gemini_tf.data.paths import data_dir
from gemini_tf.evaluation import binary_metrics, predict_dataset, vote_accuracy
from gemini_tf.data.sources import labelled_dataset, labelled_splits, labelled_texts
from gemini_tf.training import train_classifier
from results_file import merge_results

MODELS = ("majority", "tfidf", "text_only", "image_only", "concat", "cross_attention")


def splits(args):
    """(train, validation, test, test sentence ids or None, image_size)."""
    if args.data == "shapes":
        size = args.image_size or 64
        make = lambda n, split, negatives: shapes.make_pairs(  # noqa: E731
            n, split, 0, size, size // 16, negatives=negatives, statements=True)
        return (make(args.train_scenes, "train", "all"), make(1000, "validation", "sample"),
                make(1000, "test", "sample"), None, (size, size))
    path = data_dir("nlvr", args.data_path)
    train, validation = labelled_splits(path)
    test, report = load_nlvr(path, "test")
    print(report.summary())
    height = args.image_size or 64
    return train, validation, test, [r.image_id for r in test], (height, 4 * height)


def labels_of(split) -> np.ndarray:
    return np.asarray(split.labels if isinstance(split, shapes.PairSet) else [r.label for r in split])


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
    parser.add_argument("--shapes-matching", choices=("groups", "pairs"), default="groups")
    parser.add_argument("--output-dir", default="saved_models/classification")
    parser.add_argument("--results", default=None)
    args = parser.parse_args()
    results_path = args.results or f"benchmarks/results/classification_{args.data}.json"

    train, validation, test, sentence_ids, image_size = splits(args)
    train_labels, test_labels = labels_of(train), labels_of(test)
    sequence_length = args.sequence_length or (12 if args.data == "shapes" else 32)
    results = {"settings": vars(args), "train_examples": len(train_labels), "test_examples": len(test_labels)}

    def report(name, probabilities, minutes=0.0, parameters=None):
        row = {**binary_metrics(test_labels, probabilities), "train_minutes": minutes}
        if sentence_ids is not None:
            row["sentence_accuracy"] = vote_accuracy(test_labels, probabilities, sentence_ids)
        if parameters:
            row["parameters"] = parameters
        results[name] = row
        print(name, json.dumps(row))

    for name in args.models:
        start = time.time()
        if name == "majority":
            report(name, np.full(len(test_labels), majority_baseline(train_labels)))
            continue
        if name == "tfidf":
            tfidf = tfidf_baseline().fit(labelled_texts(train), train_labels)
            report(name, tfidf.predict_proba(labelled_texts(test))[:, 1], (time.time() - start) / 60)
            continue
        fusion = name if name in ("concat", "cross_attention") else "cross_attention"
        config = gemini_tf.GeminiConfig.from_preset(
            args.preset, fusion=fusion, task="classify", image_size=image_size, sequence_length=sequence_length,
            dropout=args.dropout)
        model_fn = {"text_only": text_only_model, "image_only": image_only_model}.get(name, gemini_tf.gemini_model)
        if args.data == "shapes" and model_fn is gemini_tf.gemini_model and args.shapes_matching == "groups":
            bundle = gemini_tf.train(os.path.join(args.output_dir, args.data, name), task="classify",
                                     preset=args.preset, fusion=fusion, epochs=args.epochs,
                                     batch_size=args.batch_size, learning_rate=args.learning_rate,
                                     train_scenes=args.train_scenes, matching="groups", verbose=2)
            report(name, bundle.predict(test.images, test.texts), (time.time() - start) / 60,
                   bundle.model.count_params())
            continue
        bundle = train_classifier(os.path.join(args.output_dir, args.data, name), config, train, validation,
                                  args.epochs, args.batch_size, args.learning_rate, seed=0, verbose=2,
                                  model_fn=model_fn)
        minutes = (time.time() - start) / 60
        test_data = labelled_dataset(test, bundle.preprocessor, config.image_size, 128)
        _, probabilities = predict_dataset(bundle.model, test_data)
        report(name, probabilities, minutes, bundle.model.count_params())

    merge_results(results_path, results)


if __name__ == "__main__":
    main()
