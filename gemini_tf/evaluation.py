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

from gemini_tf.caption_evaluation import evaluate_descriptions
from gemini_tf.data import shapes
from gemini_tf.data.shapes import HARD_KINDS
from gemini_tf.data.sources import DataSource, NLVRWorldSource, ShapesSource, open_source
from gemini_tf.data.splits import PARTS
from gemini_tf.preprocessing.image import preprocess_images
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


def metrics_by_kind(labels, probabilities, kinds: Sequence[str], threshold: float = 0.5) -> dict[str, float]:
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
    leading = [
        "random",
        "hard",
        "accuracy",
        "roc_auc",
        "precision",
        "recall",
        "acc_positive",
        "random_seen",
        "hard_seen",
        "random_held_out",
        "hard_held_out",
    ]
    if column in leading:
        return (leading.index(column),)
    natural = tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", column))
    return (len(leading), column.endswith("r_mean"), natural)


def evaluate_shapes(
    bundle, split: str = "test", num_scenes: int = 1000, seed: int = 0, style: str = "default"
) -> dict[str, float]:
    """Metrics of a bundle on a Shapes split: one positive, one random negative and
    one negative of each available one-difference kind per scene, drawn in `style`.

    Besides `metrics_by_kind`: `random_seen` / `hard_seen` on scenes whose true
    caption uses only combinations seen in training, `random_held_out` /
    `hard_held_out` on those whose caption `mentions_held_out` (systematic
    generalisation; the test split has both).
    """
    pairs = shapes.make_pairs(
        num_scenes,
        split,
        seed,
        bundle.config.image_size[0],
        negatives="all",
        statements=bundle.config.task == "classify",
        style=style,
    )
    probabilities = bundle.predict(pairs.images, pairs.texts)
    metrics = metrics_by_kind(pairs.labels, probabilities, pairs.kinds)
    kinds = np.asarray(pairs.kinds)
    for name, rows in (("seen", ~pairs.held_out), ("held_out", pairs.held_out)):
        if rows.any():
            subset = metrics_by_kind(pairs.labels[rows], probabilities[rows], kinds[rows])
            metrics.update({f"{score}_{name}": subset[score] for score in ("random", "hard") if score in subset})
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


def consistency(labels, probabilities, groups, threshold: float = 0.5) -> float:
    """Share of groups (an NLVR sentence with its six renderings) whose every row is right, as NLVR reports it."""
    labels, groups = np.asarray(labels).astype(int), np.asarray(groups)
    right = (np.asarray(probabilities).reshape(-1) >= threshold).astype(int) == labels
    return float(np.mean([right[groups == group].all() for group in np.unique(groups)]))


def scored_part(
    bundle, data: str | DataSource = "shapes", part: str | None = None, scenes: int = 1000, seed: int = 0
) -> tuple[DataSource, str]:
    """The source and part `evaluate` scores: `part`, or the held-out one (test, else validation).

    "shapes" and "nlvr_world" mean `scenes` generated scenes per part, drawn at the bundle's image
    size (Shapes phrased for the bundle's task).
    """
    if isinstance(data, str) and data == "shapes":
        source = ShapesSource(
            statements=bundle.config.task == "classify",
            seed=seed,
            image_size=bundle.config.image_size[0],
            scenes=dict.fromkeys(PARTS, scenes),
        )
    elif isinstance(data, str) and data == "nlvr_world":
        source = NLVRWorldSource(dict.fromkeys(PARTS, scenes), seed, bundle.config.image_size)
    else:
        source = open_source(data)
    return source, source.check_part(part or source.held_out_part)


def evaluate(
    bundle,
    data: str | DataSource = "shapes",
    part: str | None = None,
    scenes: int = 1000,
    seed: int = 0,
    k_test: int = 16,
) -> dict[str, float]:
    """Metrics of a bundle on one part of a data source; `part` defaults to the held-out one.

    Shapes: `evaluate_shapes` (per negative kind). Labelled pairs (NLVR, a
    manifest with labels, TFRecords): `binary_metrics`, plus `sentence_accuracy`
    (majority of each sentence's renderings) and `consistency` (all of them right)
    for NLVR. Captions (Flickr8k, COCO, a caption manifest): Recall@K both ways, by
    ITC and with the top `k_test` re-ranked by ITM. Describe models:
    `caption_evaluation.evaluate_descriptions`. `examples` is the number of rows scored.
    """
    source, part = scored_part(bundle, data, part, scenes, seed)
    if bundle.model.task == "describe":
        return evaluate_descriptions(bundle, source, part)
    if isinstance(source, ShapesSource):
        return evaluate_shapes(bundle, part, source.scenes[part], source.seed)
    image_size = bundle.config.image_size
    if source.holds == "captions":
        captions = source.captions(part)
        results = evaluate_retrieval(
            bundle.model,
            bundle.preprocessor,
            captions.pixels(image_size),
            captions.texts,
            captions.image_index,
            image_size,
            k_test=k_test,
        )
        return {**flat_metrics(results), "examples": float(len(captions))}
    pairs = source.pairs(part)
    labels, probabilities = predict_dataset(bundle.model, pairs.dataset(bundle.preprocessor, image_size, 128))
    metrics = binary_metrics(labels, probabilities)
    if getattr(pairs, "groups", None) and source.kind == "nlvr":
        metrics["sentence_accuracy"] = vote_accuracy(labels, probabilities, pairs.groups)
        metrics["consistency"] = consistency(labels, probabilities, pairs.groups)
    return {**metrics, "examples": float(len(labels))}


def word_object_attention(bundle, split: str = "test", num_scenes: int = 300, seed: int = 0) -> dict[str, float]:
    """How much of each colour or shape word's attention falls on the object(s) it names.

    For every true caption of `num_scenes` scenes, each colour and shape word
    names a set of objects (an attribute or count caption: the objects with
    those attributes; a relation: the subject objects that stand in the
    relation, or the objects they relate to). Its share is the fusion's
    attention (mean over heads, `GeminiModel.attention_maps`) on the patches those
    objects cover. Returns the mean share (`word_object_attention`), per word
    type, and `chance`: the share uniform attention would give.
    """
    config = bundle.config
    scenes = shapes.generate_scenes(num_scenes, split, seed)
    rng = np.random.default_rng([seed, 7919])
    objects = [scenes.objects(i) for i in range(len(scenes))]
    captions = [shapes.describe(objects[i], rng) for i in range(len(scenes))]
    texts = [c.statement() if config.task == "classify" else c.text() for c in captions]
    token_ids = bundle.preprocessor(texts).numpy()
    pixels = preprocess_images(shapes.render(scenes, config.image_size[0], seed=seed), config.image_size)
    maps = np.concatenate(
        [
            np.asarray(bundle.model.attention_maps(token_ids[i : i + 128], pixels[i : i + 128])).mean(axis=1)
            for i in range(0, len(texts), 128)
        ]
    )  # [scenes, tokens, patches]
    covered = shapes.patch_coverage(scenes, config.image_size[0], config.grid_size, seed=seed)  # [n, K, patches]
    shares: dict[str, list[float]] = {"colour": [], "shape": []}
    chance = []
    for i, caption in enumerate(captions):
        phrases = shapes.referents(caption, objects[i])
        words, phrase = texts[i].split(), 0
        for position, word_index in enumerate(_word_of_each_token(bundle.preprocessor.tokens([texts[i]])[0])):
            word = words[word_index] if word_index is not None else ""
            if word in shapes.RELATIONS or word in ("left", "right"):
                phrase = 1
            kind = "colour" if word in shapes.COLOUR_NAMES else "shape" if word.rstrip("s") in shapes.SHAPES else None
            if kind and phrases[phrase]:
                patches = covered[i, phrases[phrase]].any(axis=0)
                shares[kind].append(float(maps[i, position, patches].sum()))
                chance.append(float(patches.mean()))
    everything = shares["colour"] + shares["shape"]
    return {
        "word_object_attention": float(np.mean(everything)),
        "colour_words": float(np.mean(shares["colour"])),
        "shape_words": float(np.mean(shares["shape"])),
        "chance": float(np.mean(chance)),
    }


def _word_of_each_token(tokens: list[str]) -> list[int | None]:
    """The index of the text word each token belongs to (None for [CLS] / [SEP]); "##" pieces join the word."""
    out, word = [], -1
    for token in tokens:
        if token in ("[CLS]", "[SEP]"):
            out.append(None)
            continue
        if not token.startswith("##"):
            word += 1
        out.append(word)
    return out
