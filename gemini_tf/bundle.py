"""`GeminiBundle`: a trained model with its text preprocessor and config, saved as one folder.

A bundle folder holds `model.keras` (the functional model, with its retrieval
projections and contrastive head), `vocab.txt` (the WordPiece vocabulary) and
`gemini_tf.json` (config, label names, the training data's spec, version,
metrics, history). Everything that serves the model — the CLI, the SavedModel
export, TFLite calibration, notebooks — loads it through `load`.
"""

from __future__ import annotations

import dataclasses
import json
import os

import keras
import numpy as np
import tensorflow as tf

from gemini_tf.config import GeminiConfig
from gemini_tf.data.pipeline import check_texts
from gemini_tf.models.gemini import MODEL_PARTS  # also registers the package's layers for `load_model`
from gemini_tf.preprocessing.image import load_images
from gemini_tf.preprocessing.text import TextPreprocessor, load_vocabulary, save_vocabulary
from gemini_tf.version import __version__

MODEL_FILE, VOCAB_FILE, META_FILE = "model.keras", "vocab.txt", "gemini_tf.json"
LABEL_NAMES = {"itm": ("no_match", "match"), "classify": ("false", "true")}


@dataclasses.dataclass
class GeminiBundle:
    """A model, the `TextPreprocessor` it was trained with, and its config.

    `data` is the training data's `DataSource.spec()` (what int8 calibration and
    `evaluate` reopen), `metrics` the validation metrics of training.
    `trained_parts` names the parts of `model` (`MODEL_PARTS`) that hold learnt
    weights — what `train(init=...)` copies (MLM pre-training: the text encoder
    only); `pretraining` records how it was pre-trained or initialised.
    """

    model: keras.Model
    preprocessor: TextPreprocessor
    config: GeminiConfig
    label_names: tuple[str, str] = LABEL_NAMES["itm"]
    metrics: dict = dataclasses.field(default_factory=dict)
    history: dict = dataclasses.field(default_factory=dict)
    data: dict = dataclasses.field(default_factory=dict)
    trained_parts: tuple[str, ...] = MODEL_PARTS
    pretraining: dict = dataclasses.field(default_factory=dict)

    def predict(self, images, texts: list[str], batch_size: int = 256) -> np.ndarray:
        """P(match) (or P(true)) for each (image, text) pair.

        `images`: image file paths, or uint8 arrays [N, H, W, 3].
        """
        texts = check_texts(texts)
        images = load_images(images, self.config.image_size)
        if len(images) != len(texts):
            raise ValueError(f"Got {len(images)} images but {len(texts)} texts.")
        token_ids = self.preprocessor(tf.constant(texts)).numpy()
        return self.model.predict([token_ids, images], batch_size=batch_size, verbose=0)[:, -1]

    def save(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self.model.save(os.path.join(directory, MODEL_FILE))
        save_vocabulary(self.preprocessor.vocabulary, os.path.join(directory, VOCAB_FILE))
        meta = {
            "gemini_tf_version": __version__,
            "config": self.config.to_dict(),
            "label_names": list(self.label_names),
            "data": self.data,
            "metrics": self.metrics,
            "history": self.history,
            "trained_parts": list(self.trained_parts),
            "pretraining": self.pretraining,
        }
        with open(os.path.join(directory, META_FILE), "w") as f:
            json.dump(meta, f, indent=2)


def load(directory: str) -> GeminiBundle:
    """Loads a bundle folder written by `GeminiBundle.save` (or `gemini-tf train`)."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"No such model directory: {directory}")
    missing = [f for f in (MODEL_FILE, VOCAB_FILE, META_FILE) if not os.path.isfile(os.path.join(directory, f))]
    if missing:
        raise ValueError(
            f"{directory} holds no gemini_tf model: missing {', '.join(missing)}. "
            "Point --model at a folder written by `gemini-tf train`."
        )
    with open(os.path.join(directory, META_FILE)) as f:
        meta = json.load(f)
    config = GeminiConfig.from_dict(meta["config"])
    model = keras.saving.load_model(os.path.join(directory, MODEL_FILE))
    preprocessor = TextPreprocessor(load_vocabulary(os.path.join(directory, VOCAB_FILE)), config.sequence_length)
    return GeminiBundle(
        model,
        preprocessor,
        config,
        tuple(meta.get("label_names", LABEL_NAMES["itm"])),
        meta.get("metrics", {}),
        meta.get("history", {}),
        meta.get("data", {}),
        tuple(meta.get("trained_parts", MODEL_PARTS)),
        meta.get("pretraining", {}),
    )
