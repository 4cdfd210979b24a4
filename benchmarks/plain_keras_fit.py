"""Runs the README's plain Keras workflow verbatim and records its test accuracy.

    python benchmarks/plain_keras_fit.py                    # the README's preset, tiny_grounded
    python benchmarks/plain_keras_fit.py --preset tiny [--fusion grounded [--phrase-evidence]]   # earlier rows

Shapes yes/no statements from 4,000 training scenes, scikit-learn's
`train_test_split`, `compile(optimizer="adam", loss="binary_crossentropy")` and
`fit` for 10 epochs: the documented way a user trains on their own labelled
pairs. The only additions to the README snippet are the model's preset and fusion
arguments, the timing and the test accuracy per kind of pair (the same split).
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np
from sklearn.model_selection import train_test_split

import gemini_tf
from gemini_tf import shapes

from results_file import merge_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fusion", default=None, help="default: the preset's")
    parser.add_argument("--phrase-evidence", action="store_true", help="grounded fusion's phrase evidence")
    parser.add_argument("--preset", default="tiny_grounded")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", default="benchmarks/results/plain_keras_fit.json")
    args = parser.parse_args()
    keras.utils.set_random_seed(args.seed)
    start = time.perf_counter()

    data = shapes.make_pairs(4000, "train", statements=True)
    preprocessor = gemini_tf.TextPreprocessor(gemini_tf.learn_vocabulary(data.texts), sequence_length=16)
    token_ids = preprocessor(data.texts).numpy()
    images = gemini_tf.preprocess_images(data.images, (64, 64))
    # The kinds ride along: the same random_state gives every array the same split.
    ids_train, ids_test, img_train, img_test, y_train, y_test, _, kinds_test = train_test_split(
        token_ids, images, data.labels, np.asarray(data.kinds), test_size=0.2, random_state=0
    )
    model = gemini_tf.gemini_model(
        args.preset,
        vocabulary_size=preprocessor.vocabulary_size,
        sequence_length=preprocessor.sequence_length,
        task="classify",
        **({"fusion": args.fusion} if args.fusion else {}),
        **({"phrase_evidence": True} if args.phrase_evidence else {}),
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit([ids_train, img_train], y_train, epochs=args.epochs, batch_size=32, verbose=2)
    loss, accuracy = model.evaluate([ids_test, img_test], y_test, verbose=0)
    right = (model.predict([ids_test, img_test], verbose=0)[:, 0] > 0.5) == (np.asarray(y_test) == 1)
    per_kind = {kind: float(right[kinds_test == kind].mean()) for kind in ("positive", *shapes.NEGATIVE_KINDS)}

    fusion = model.name.removeprefix("gemini_")
    row = {
        "fusion": fusion,
        "phrase_evidence": bool(getattr(model.fusion, "phrase_evidence", False)),
        "preset": args.preset,
        "pairs": len(data.labels),
        "positive_share": float(data.labels.mean()),
        "test_accuracy": float(accuracy),
        "test_loss": float(loss),
        "test_accuracy_by_kind": per_kind,
        "train_loss": [float(v) for v in history.history["loss"]],
        "seconds": time.perf_counter() - start,
    }
    print(row)
    name = (
        fusion
        + ("_phrases" if args.phrase_evidence else "")
        + ("" if args.preset == "tiny" else f"_{args.preset}")
        + ("" if args.epochs == 10 else f"_{args.epochs}epochs")
    )
    merge_results(args.results, {f"{name}_seed{args.seed}": row})


if __name__ == "__main__":
    main()
