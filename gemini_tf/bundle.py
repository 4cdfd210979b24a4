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
from gemini_tf.models.captioner import make_sampler  # registers the captioner for `load_model`
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
    # Compiled caption generators of a describe bundle, by (sampler, beams, top_p, max_length).
    generators: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def describe(
        self,
        images,
        sampler: str = "greedy",
        num_beams: int = 4,
        top_p: float = 0.9,
        max_length: int | None = None,
        rerank: GeminiBundle | None = None,
        batch_size: int = 64,
    ) -> list[str]:
        """A caption for each image (file paths, or uint8 arrays [N, H, W, 3]); `sampler` is one of
        `models.captioner.SAMPLERS`. Needs a bundle trained with task "describe".

        `rerank`: a matching bundle (task itm). Then every one of `num_beams` beams is a candidate,
        and the caption is the one with the highest log P(caption) + log-odds P(match) by `rerank`:
        the captioner proposes, the matcher checks (as BLIP's captioner and filter do).
        """
        if self.model.task != "describe":
            raise ValueError(
                f"This is a {self.model.task!r} model; describing images needs one trained with --task describe."
            )
        pixels = load_images(images, self.config.image_size)
        if rerank is not None:
            return self._reranked(images, pixels, num_beams, max_length, rerank, batch_size)
        key = (sampler, num_beams, top_p, max_length)
        if key not in self.generators:
            self.generators[key] = self.model.generate_function(make_sampler(sampler, num_beams, top_p), max_length)
        generate = self.generators[key]
        ids = [generate(tf.constant(pixels[i : i + batch_size])) for i in range(0, len(pixels), batch_size)]
        return self._texts(tf.concat(ids, 0)) if ids else []

    def _texts(self, token_ids) -> list[str]:
        return [text.decode("utf-8") for text in self.preprocessor.detokenize(token_ids).numpy()]

    def _reranked(self, images, pixels: np.ndarray, num_beams: int, max_length, matcher: GeminiBundle, batch_size: int):
        """`describe` with `rerank`: `images` as the user gave them (the matcher preprocesses its own),
        `pixels` the captioner's input."""
        if matcher.model.task != "itm":
            raise ValueError(f"rerank needs a matching (itm) model, got a {matcher.model.task!r} one.")
        key = ("candidates", num_beams, max_length)
        if key not in self.generators:
            self.generators[key] = tf.function(lambda x: self.model.candidates(x, num_beams, max_length))
        chosen = []
        for start in range(0, len(pixels), batch_size):
            ids, log_probs = self.generators[key](tf.constant(pixels[start : start + batch_size]))
            texts = self._texts(tf.reshape(ids, (-1, ids.shape[-1])))
            written = [i for i, text in enumerate(texts) if text]  # an empty caption is never chosen
            match = np.full(len(texts), 1e-6)
            repeated = [image for image in images[start : start + batch_size] for _ in range(num_beams)]
            match[written] = matcher.predict([repeated[i] for i in written], [texts[i] for i in written]).clip(
                1e-6, 1 - 1e-6
            )
            scores = np.asarray(log_probs).reshape(-1) + np.log(match) - np.log1p(-match)
            best = scores.reshape(-1, num_beams).argmax(axis=1)
            chosen += [texts[row * num_beams + beam] for row, beam in enumerate(best)]
        return chosen

    def predict(self, images, texts: list[str], batch_size: int = 256) -> np.ndarray:
        """P(match) (or P(true)) for each (image, text) pair.

        `images`: image file paths, or uint8 arrays [N, H, W, 3].
        """
        if self.model.task == "describe":
            raise ValueError("A describe model writes captions (`describe`); it does not score (image, text) pairs.")
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
    # Bundles serve and fine-tune: the training run's optimizer and loss are not restored.
    model = keras.saving.load_model(os.path.join(directory, MODEL_FILE), compile=False)
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
