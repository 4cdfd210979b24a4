"""Plots used by the notebooks: example grids, learning curves, per-kind accuracy, attention.

`word_object_attention` (from `gemini_tf.evaluation`) is the number behind the
attention plots: the share of each colour / shape word's attention on the
object it names.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from gemini_tf.evaluation import word_object_attention as word_object_attention
from gemini_tf.preprocessing import preprocess_images


def show_examples(images: np.ndarray, captions: Sequence[str], columns: int = 4, title: str | None = None):
    """A grid of images with their captions underneath."""
    rows = int(np.ceil(len(images) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, captions):
        ax.imshow(image)
        ax.set_title(caption, fontsize=9, wrap=True)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_history(history: dict[str, list[float]], metrics: Sequence[str] | None = None):
    """Training and validation curves, one panel per metric."""
    metrics = metrics or [
        k for k in history if not k.startswith("val_") and k not in ("learning_rate", "epoch_seconds")
    ]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3), squeeze=False)
    for ax, name in zip(axes[0], metrics):
        ax.plot(history[name], label="train")
        if f"val_{name}" in history:
            ax.plot(history[f"val_{name}"], label="validation")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    return fig


def plot_accuracy_by_kind(results: dict[str, dict[str, float]]):
    """Grouped bars: accuracy on positives and on each negative kind, per model."""
    kinds = sorted(
        {k[4:] for r in results.values() for k in r if k.startswith("acc_")}, key=lambda k: (k != "positive", k)
    )
    width = 0.8 / len(results)
    fig, ax = plt.subplots(figsize=(1.2 * len(kinds) + 2, 3.5))
    for i, (name, metrics) in enumerate(results.items()):
        values = [100 * metrics.get(f"acc_{k}", np.nan) for k in kinds]
        ax.bar(np.arange(len(kinds)) + i * width, values, width, label=name)
    ax.set_xticks(np.arange(len(kinds)) + width * (len(results) - 1) / 2, kinds)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_attention(image: np.ndarray, tokens: Sequence[str], maps: np.ndarray, grid: tuple[int, int]):
    """Cross-attention of each text token over the image's patch grid (mean over heads).

    `maps`: [heads, text_len, patches] for one example, from
    `GeminiModel.attention_maps`.
    """
    weights = maps.mean(0)[: len(tokens)].reshape(len(tokens), *grid)
    fig, axes = plt.subplots(1, len(tokens) + 1, figsize=(2.2 * (len(tokens) + 1), 2.6))
    axes[0].imshow(image)
    axes[0].set_title("image")
    for ax, token, heat in zip(axes[1:], tokens, weights):
        ax.imshow(image)
        ax.imshow(heat, cmap="magma", alpha=0.6, extent=(0, image.shape[1], image.shape[0], 0))
        ax.set_title(token)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_word_attention(bundle, image: np.ndarray, text: str):
    """Per-word attention maps of a trained bundle for one uint8 image and its text."""
    token_ids = bundle.preprocessor([text]).numpy()
    pixels = preprocess_images(image[None], bundle.config.image_size)
    maps = np.asarray(bundle.model.attention_maps(token_ids, pixels))[0]
    return plot_attention(image, bundle.preprocessor.tokens([text])[0], maps, bundle.config.grid_size)


def plot_variants(rows: dict[str, dict[str, float]]):
    """Bar charts of size, batch-1 latency and accuracy per deployed variant."""
    panels = [("size_mb", "size (MB)"), ("p50_ms_b1", "p50 latency, batch 1 (ms)"), ("accuracy", "accuracy (%)")]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4))
    for ax, (key, title) in zip(axes, panels):
        names = [n for n, r in rows.items() if key in r]
        values = [rows[n][key] * (100 if key == "accuracy" else 1) for n in names]
        ax.barh(names, values)
        ax.set_title(title)
        if key == "accuracy":
            ax.set_xlim(min(values) - 5, 100)
    fig.tight_layout()
    return fig


def show_renderings(images: Sequence[np.ndarray], sentence: str, probabilities: Sequence[float], truth: bool):
    """One sentence, its renderings in a row (NLVR: the same scene with its boxes in six orders),
    and the model's P(true) on each: a model that looks gives them all the same, right answer."""
    fig, axes = plt.subplots(1, len(images), figsize=(2.6 * len(images), 1.55), squeeze=False)
    for k, (ax, image, probability) in enumerate(zip(axes[0], images, probabilities)):
        ax.imshow(image)
        right = (probability >= 0.5) == truth
        ax.set_title(f"#{k}: P(true) {probability:.2f}", fontsize=9, color="green" if right else "red")
        ax.axis("off")
    fig.suptitle(f"“{sentence}” ({'true' if truth else 'false'})", fontsize=10)
    fig.tight_layout()
    return fig
