"""Fine-tuning from a pre-trained bundle: its architecture and vocabulary, its weights, frozen parts.

`train(init=...)` and `gemini-tf train --init DIR [--freeze text|image|none]`
start from a bundle written by `pretrain` (or any `train`):

* the model is built from the bundle's config (only the task and dropout may
  change); an option that asks for another architecture is an error naming it;
* the bundle's vocabulary is kept (its token embeddings mean those tokens);
* the weights of the parts the bundle trained (`GeminiBundle.trained_parts`: all
  of them, or the text encoder alone after MLM) are copied into the new model;
* `--freeze text` / `image` keeps that encoder's pre-trained weights fixed.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np

from gemini_tf.bundle import GeminiBundle
from gemini_tf.config import GeminiConfig

FREEZE = {"none": (), "text": ("text_encoder",), "image": ("image_encoder",)}
FINE_TUNING_FIELDS = ("task", "dropout")  # config fields a fine-tuning run may change


def fine_tuning_config(pretrained: GeminiBundle, where: str, task: str, requested: dict) -> GeminiConfig:
    """The pre-trained config with this run's `task` and dropout; `requested` holds the other
    fields this run asks for (preset values, --fusion, --image-size, ...), which must agree."""
    base = pretrained.config.to_dict()
    conflicts = [
        f"{key} {base[key]!r} (asked: {value!r})"
        for key, value in requested.items()
        if key not in FINE_TUNING_FIELDS and _plain(value) != _plain(base[key])
    ]
    if conflicts:
        raise ValueError(
            f"--init {where} was pre-trained with {', '.join(conflicts)}: the weights fit only that "
            "architecture. Drop those options (the model is built from the pre-trained config) or pre-train again."
        )
    return GeminiConfig.from_dict(
        {**base, **{k: v for k, v in requested.items() if k in FINE_TUNING_FIELDS}, "task": task}
    )


def _plain(value):
    return list(value) if isinstance(value, (tuple, list)) else value


def check_vocabulary(pretrained: GeminiBundle, where: str, vocabulary: list[str]) -> None:
    """ValueError when `vocabulary` (what this run tokenizes with) is not the one the pre-trained
    token embeddings were learnt for."""
    expected = pretrained.preprocessor.vocabulary
    rows = pretrained.model.text_encoder.get_layer("token_and_position_embedding").token_embedding.input_dim
    if len(expected) != rows:
        raise ValueError(
            f"--init {where}: its vocabulary has {len(expected)} tokens but its text encoder embeds {rows}; "
            "the bundle's vocab.txt does not belong to its model.keras."
        )
    if vocabulary != expected:
        first = next((i for i, (a, b) in enumerate(zip(vocabulary, expected)) if a != b), min(len(vocabulary), rows))
        raise ValueError(
            f"--init {where}: the vocabulary differs from the pre-trained one ({len(vocabulary)} vs {len(expected)} "
            f"tokens, first difference at id {first}); the pre-trained token embeddings fit only its own "
            "vocabulary, which fine-tuning keeps."
        )


def load_pretrained_weights(model: keras.Model, pretrained: GeminiBundle, where: str) -> tuple[str, ...]:
    """Copies the weights of the bundle's trained parts into `model`; returns the parts copied."""
    for part in pretrained.trained_parts:
        source, target = getattr(pretrained.model, part), getattr(model, part)
        shapes = [tuple(w.shape) for w in source.weights], [tuple(w.shape) for w in target.weights]
        if shapes[0] != shapes[1]:
            raise ValueError(f"--init {where}: the {part} weights do not fit this model ({shapes[0]} vs {shapes[1]}).")
        target.set_weights([np.asarray(w) for w in source.get_weights()])
    return tuple(pretrained.trained_parts)


@contextlib.contextmanager
def frozen(model: keras.Model, freeze: str = "none"):
    """Within the block, the parts `freeze` names ("text", "image" or "none") do not train; they
    train again afterwards, so the saved model fine-tunes normally. A model compiled in the block
    leaves it uncompiled: its optimizer state covers only the parts that trained."""
    if freeze not in FREEZE:
        raise ValueError(f"Unknown --freeze {freeze!r}; choose one of {list(FREEZE)}.")
    parts = [getattr(model, part) for part in FREEZE[freeze]]
    for part in parts:
        part.trainable = False
    try:
        yield
    finally:
        for part in parts:
            part.trainable = True
        if parts:
            model.compiled = False
