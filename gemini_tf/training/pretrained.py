"""Fine-tuning from pre-trained weights: a gemini_tf bundle, or a keras-hub preset's text encoder.

`train(init=PATH)` (`gemini-tf train --init PATH [--freeze text|image|none]`)
asks `open_init(PATH)` for where training starts:

* `BundleStart`, a bundle written by `pretrain` (or any `train`): the model is
  built from its config (only the task and dropout may change; an option that
  asks for another architecture is an error naming it), its vocabulary is kept
  (its token embeddings mean those tokens), and the weights of the parts it
  trained (`GeminiBundle.trained_parts`: all, or the text encoder after MLM)
  are copied in.
* `KerasHubTextStart`, a keras-hub preset folder saved on disk
  (`backbone.save_to_preset(dir)` + `tokenizer.save_to_preset(dir)`, a BERT-style
  backbone): its WordPiece vocabulary, and the text encoder weights whose shapes
  fit (token and position embeddings with segment 0 folded in, the embedding
  norm, the first transformer blocks). The rest of the model is built from the
  preset / options as usual. BERT's blocks are post-norm and ours pre-norm, so
  this is a warm start, not BERT's function.

`frozen(model, "text" | "image")` keeps an encoder fixed while training.
"""

from __future__ import annotations

import contextlib
import os

import keras
import keras_hub
import numpy as np

from gemini_tf.bundle import META_FILE, GeminiBundle
from gemini_tf.bundle import load as load_bundle
from gemini_tf.config import GeminiConfig, config_for, preset_fields

FREEZE = {"none": (), "text": ("text_encoder",), "image": ("image_encoder",)}
FINE_TUNING_FIELDS = ("task", "dropout", "decoder_layers")  # config fields a fine-tuning run may change


def open_init(path: str) -> BundleStart | KerasHubTextStart:
    """The start `path` holds: a gemini_tf bundle or a keras-hub preset folder."""
    if os.path.isfile(os.path.join(path, META_FILE)) or not os.path.isfile(os.path.join(path, "metadata.json")):
        return BundleStart(path)  # (load names what is missing when the folder is neither)
    return KerasHubTextStart(path)


def _check_vocabulary_size(path: str, vocabulary: list[str], vocabulary_size: int | None) -> None:
    if vocabulary_size not in (None, len(vocabulary)):
        raise ValueError(
            f"--init {path} keeps its {len(vocabulary)}-token vocabulary; --vocabulary-size {vocabulary_size} "
            "would learn another one. Drop --vocabulary-size."
        )


class BundleStart:
    """Fine-tuning from a gemini_tf bundle (see the module docstring)."""

    def __init__(self, path: str):
        self.path = path
        self.bundle: GeminiBundle = load_bundle(path)

    def config(self, task: str, preset: str | None, requested: dict) -> GeminiConfig:
        """The pre-trained config with this run's `task` and dropout; `preset`'s sizes and
        `requested` (--fusion, --image-size, ...) must agree with it."""
        base = self.bundle.config.to_dict()
        asked = {**(preset_fields(preset) if preset else {}), **requested}
        conflicts = [
            f"{key} {base[key]!r} (asked: {value!r})"
            for key, value in asked.items()
            if key not in FINE_TUNING_FIELDS and _plain(value) != _plain(base[key])
        ]
        if conflicts:
            raise ValueError(
                f"--init {self.path} was pre-trained with {', '.join(conflicts)}: the weights fit only that "
                "architecture. Drop those options (the model is built from the pre-trained config) or pre-train again."
            )
        changes = {key: value for key, value in asked.items() if key in FINE_TUNING_FIELDS}
        return GeminiConfig.from_dict({**base, **changes, "task": task})

    def vocabulary(self, vocabulary_size: int | None = None) -> list[str]:
        """The bundle's vocabulary, checked against its own token embeddings."""
        vocabulary = self.bundle.preprocessor.vocabulary
        _check_vocabulary_size(self.path, vocabulary, vocabulary_size)
        check_vocabulary(self.bundle, self.path, vocabulary)
        return vocabulary

    def load_weights(self, model: keras.Model) -> tuple[str, ...]:
        """Copies the weights of the bundle's trained parts into `model`; returns the parts copied."""
        return load_pretrained_weights(model, self.bundle, self.path)


class KerasHubTextStart:
    """Fine-tuning with a keras-hub preset's vocabulary and text encoder weights (module docstring)."""

    def __init__(self, path: str):
        self.path = path
        try:
            self.backbone = keras_hub.models.Backbone.from_preset(path)
            self.tokenizer_vocabulary = keras_hub.tokenizers.Tokenizer.from_preset(path).get_vocabulary()
        except (ValueError, FileNotFoundError, OSError) as error:
            raise ValueError(
                f"--init {path}: not a gemini_tf bundle nor a loadable keras-hub preset ({error})."
            ) from error

    def config(self, task: str, preset: str | None, requested: dict) -> GeminiConfig:
        return config_for(preset, task, requested)

    def vocabulary(self, vocabulary_size: int | None = None) -> list[str]:
        _check_vocabulary_size(self.path, self.tokenizer_vocabulary, vocabulary_size)
        return self.tokenizer_vocabulary

    def load_weights(self, model: keras.Model) -> tuple[str, ...]:
        """Copies the text encoder weights that fit; a clear error when not even the token embeddings do."""
        encoder, backbone = model.text_encoder, self.backbone
        embedding = encoder.get_layer("token_and_position_embedding")
        copied: list[str] = []

        def copy(name: str, target: keras.layers.Layer, values: list[np.ndarray]) -> None:
            if [tuple(w.shape) for w in target.weights] == [v.shape for v in values]:
                target.set_weights(values)
                copied.append(name)

        copy("token_embedding", embedding.token_embedding, backbone.token_embedding.get_weights()[:1])
        if "token_embedding" not in copied:
            raise ValueError(
                f"--init {self.path}: the preset's token embeddings are {backbone.token_embedding.embeddings.shape}, "
                f"this model's {embedding.token_embedding.embeddings.shape}; pass --preset / options whose hidden "
                "size matches the preset's."
            )
        positions = backbone.position_embedding.get_weights()[0][: encoder.sequence_length]
        if getattr(backbone, "segment_embedding", None) is not None:
            positions = positions + backbone.segment_embedding.get_weights()[0][0]  # every token is segment 0
        copy("position_embedding", embedding.position_embedding, [positions])
        if getattr(backbone, "embeddings_layer_norm", None) is not None:
            copy("embedding_norm", encoder.get_layer("embedding_norm"), backbone.embeddings_layer_norm.get_weights())
        for i, layer in enumerate(getattr(backbone, "transformer_layers", [])[: encoder.num_layers]):
            copy(f"transformer_{i}", encoder.get_layer(f"transformer_{i}"), layer.get_weights())
        return ("text_encoder",)


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
    """Copies the weights of the bundle's trained parts that `model` has too (a captioner: the image
    encoder) into `model`; returns the parts copied."""
    parts = tuple(part for part in pretrained.trained_parts if hasattr(model, part))
    if not parts:
        raise ValueError(f"--init {where}: it trained {list(pretrained.trained_parts)}, none of which this model has.")
    for part in parts:
        source, target = getattr(pretrained.model, part), getattr(model, part)
        shapes = [tuple(w.shape) for w in source.weights], [tuple(w.shape) for w in target.weights]
        if shapes[0] != shapes[1]:
            raise ValueError(f"--init {where}: the {part} weights do not fit this model ({shapes[0]} vs {shapes[1]}).")
        target.set_weights([np.asarray(w) for w in source.get_weights()])
    return parts


@contextlib.contextmanager
def frozen(model: keras.Model, freeze: str = "none"):
    """Within the block, the parts `freeze` names ("text", "image" or "none") do not train; they
    train again afterwards, so the saved model fine-tunes normally. A model compiled in the block
    leaves it uncompiled: its optimizer state covers only the parts that trained."""
    if freeze not in FREEZE:
        raise ValueError(f"Unknown --freeze {freeze!r}; choose one of {list(FREEZE)}.")
    missing = [part for part in FREEZE[freeze] if not hasattr(model, part)]
    if missing:
        raise ValueError(f"--freeze {freeze}: this model has no {missing[0]}.")
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
