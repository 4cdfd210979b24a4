"""Evaluation: accuracy, ROC AUC, precision and recall, broken down by negative kind.

For image-text matching the Shapes test split holds, per scene, one positive,
one random negative and one negative of every available one-difference kind.
Besides per-kind accuracy we report two balanced scores:

* `random`: mean of accuracy on positives and on random negatives;
* `hard`:   mean of accuracy on positives and on all one-difference negatives.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from sklearn import metrics as sk_metrics

from gemini_tf.data import shapes
from gemini_tf.data.shapes import HARD_KINDS
from gemini_tf.data.sources import DataSource, ShapesSource, open_source
from gemini_tf.data.splits import PARTS
from gemini_tf.retrieval import evaluate_retrieval, flat_metrics


def binary_metrics(labels, probabilities, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, ROC AUC, precision and recall of P(label = 1)."""
    labels = np.asarray(labels).astype(int)
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    predictions = (probabilities >= threshold).astype(int)
    result = {
        "accuracy": sk_metrics.accuracy_score(labels, predictions),
        "precision": sk_metrics.precision_score(labels, predictions, zero_division=0),
        "recall": sk_metrics.recall_score(labels, predictions, zero_division=0),
    }
    if len(np.unique(labels)) == 2:
        result["roc_auc"] = sk_metrics.roc_auc_score(labels, probabilities)
    return {k: float(v) for k, v in result.items()}


def metrics_by_kind(
    labels, probabilities, kinds: Sequence[str], threshold: float = 0.5
) -> dict[str, float]:
    """`binary_metrics` plus accuracy per kind and the balanced random/hard scores."""
    labels = np.asarray(labels).astype(int)
    kinds = np.asarray(kinds)
    correct = (np.asarray(probabilities).reshape(-1) >= threshold).astype(int) == labels
    result = binary_metrics(labels, probabilities, threshold)
    for kind in np.unique(kinds):
        result[f"acc_{kind}"] = float(correct[kinds == kind].mean())
    if "acc_positive" in result:
        positive = result["acc_positive"]
        if "acc_random" in result:
            result["random"] = (positive + result["acc_random"]) / 2
        hard = np.isin(kinds, HARD_KINDS)
        if hard.any():
            result["hard"] = (positive + float(correct[hard].mean())) / 2
    return result


COUNTS = ("examples",)  # metrics that are counts, not fractions


def format_table(rows: dict[str, dict[str, float]]) -> str:
    """A plain-text table: one row per model, one column per metric (percent)."""
    columns = sorted({k for row in rows.values() for k in row}, key=_column_order)
    width = max(len(name) for name in rows) if rows else 5
    lines = [" ".join([f"{'model':<{width}}"] + [f"{c:>12}" for c in columns])]

    def cell(row, column):
        if column not in row:
            return f"{'-':>12}"
        return f"{int(row[column]):>12d}" if column in COUNTS else f"{100 * row[column]:>11.1f}%"

    for name, row in rows.items():
        cells = [cell(row, c) for c in columns]
        lines.append(" ".join([f"{name:<{width}}"] + cells))
    return "\n".join(lines)


def _column_order(column: str) -> tuple:
    """Headline metrics first, then the rest in natural order (r1, r5, r10, not r1, r10, r5)."""
    leading = ["random", "hard", "accuracy", "roc_auc", "precision", "recall", "acc_positive"]
    if column in leading:
        return (leading.index(column),)
    natural = tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", column))
    return (len(leading), column.endswith("r_mean"), natural)


def evaluate_shapes(bundle, split: str = "test", num_scenes: int = 1000, seed: int = 0) -> dict[str, float]:
    """Metrics of a bundle on a Shapes split: one positive, one random negative and
    one negative of each available one-difference kind per scene."""
    pairs = shapes.make_pairs(num_scenes, split, seed, bundle.config.image_size[0], negatives="all",
                              statements=bundle.config.task == "classify")
    metrics = metrics_by_kind(pairs.labels, bundle.predict(pairs.images, pairs.texts), pairs.kinds)
    return {**metrics, "examples": float(len(pairs))}


def predict_dataset(model, dataset) -> tuple[np.ndarray, np.ndarray]:
    """(labels, P(label = 1)) of every batch of a ((inputs), labels) dataset."""
    labels, probabilities = [], []
    for inputs, batch_labels in dataset:
        labels.append(np.asarray(batch_labels).reshape(-1))
        probabilities.append(np.asarray(model(inputs, training=False))[:, -1])
    return np.concatenate(labels), np.concatenate(probabilities)


def vote_accuracy(labels, probabilities, groups, threshold: float = 0.5) -> float:
    """Accuracy of the majority vote of each group (e.g. an NLVR sentence's six images).

    Ties count as "true" (positive).
    """
    labels, groups = np.asarray(labels).astype(int), np.asarray(groups)
    votes = (np.asarray(probabilities).reshape(-1) >= threshold).astype(float)
    correct = []
    for group in np.unique(groups):
        members = groups == group
        correct.append(int(votes[members].mean() >= 0.5) == labels[members][0])
    return float(np.mean(correct))


def scored_part(bundle, data: str | DataSource = "shapes", part: str | None = None, scenes: int = 1000,
                seed: int = 0) -> tuple[DataSource, str]:
    """The source and part `evaluate` scores: `part`, or the held-out one (test, else validation).

    "shapes" means `scenes` generated scenes per part, phrased for the bundle's task.
    """
    if isinstance(data, str) and data == "shapes":
        source = ShapesSource(statements=bundle.config.task == "classify", seed=seed,
                              image_size=bundle.config.image_size[0], scenes=dict.fromkeys(PARTS, scenes))
    else:
        source = open_source(data)
    return source, source.check_part(part or source.held_out_part)


def evaluate(bundle, data: str | DataSource = "shapes", part: str | None = None, scenes: int = 1000,
             seed: int = 0, k_test: int = 16) -> dict[str, float]:
    """Metrics of a bundle on one part of a data source; `part` defaults to the held-out one.

    Shapes: `evaluate_shapes` (per negative kind). Labelled pairs (NLVR, a
    manifest with labels, TFRecords): `binary_metrics`, plus `sentence_accuracy`
    (majority of each sentence's renderings) for NLVR. Captions (Flickr8k, COCO,
    a caption manifest): Recall@K both ways, by ITC and with the top `k_test`
    re-ranked by ITM. `examples` is the number of rows scored.
    """
    source, part = scored_part(bundle, data, part, scenes, seed)
    if isinstance(source, ShapesSource):
        return evaluate_shapes(bundle, part, source.scenes[part], source.seed)
    image_size = bundle.config.image_size
    if source.holds == "captions":
        captions = source.captions(part)
        results = evaluate_retrieval(bundle.model, bundle.preprocessor, captions.pixels(image_size),
                                     captions.texts, captions.image_index, image_size, k_test=k_test)
        return {**flat_metrics(results), "examples": float(len(captions))}
    pairs = source.pairs(part)
    labels, probabilities = predict_dataset(bundle.model, pairs.dataset(bundle.preprocessor, image_size, 128))
    metrics = binary_metrics(labels, probabilities)
    if getattr(pairs, "groups", None) and source.kind == "nlvr":
        metrics["sentence_accuracy"] = vote_accuracy(labels, probabilities, pairs.groups)
    return {**metrics, "examples": float(len(labels))}
