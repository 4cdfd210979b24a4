"""`pretrain`: the first of two training stages — learn from plentiful cheap data, then fine-tune.

Two objectives, each saving a bundle that `train(init=...)` fine-tunes from:

* "statements": listwise true/false statements about generated scenes
  (`NLVRWorldSource`: each image with its true statement and the one-slot false
  twin; or Shapes statements). Trains every part of the model: the bundle
  already answers "is this statement true of the image?" (zero-shot).
* "mlm": masked-language modelling of the text encoder on any text
  (`data.corpus.read_texts`: text files, the training sentences of a dataset,
  generated statements), BERT-style with keras-hub's `MaskedLMMaskGenerator`
  and `MaskedLMHead` on the tied token embeddings. Only the text encoder is
  handed on (`GeminiBundle.trained_parts`).

Stages chain through `init`: `pretrain("mlm")` -> `pretrain("statements",
init=...)` -> `train(init=...)` on the labelled task. The vocabulary is learnt
once, by the first stage, from its texts (pass the fine-tuning task's training
sentences in `texts` so their words are in it) and kept by every later stage.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras

from gemini_tf.bundle import LABEL_NAMES, GeminiBundle
from gemini_tf.config import GeminiConfig, config_for
from gemini_tf.data.corpus import read_texts
from gemini_tf.data.report import DataError
from gemini_tf.data.splits import parts_of
from gemini_tf.models.gemini import gemini_model
from gemini_tf.models.masked_lm import TextMaskedLM
from gemini_tf.preprocessing.masking import masked_dataset
from gemini_tf.preprocessing.text import TextPreprocessor, learn_vocabulary
from gemini_tf.training.loop import FitSettings, adamw, fit, history_dict
from gemini_tf.training.train import train

OBJECTIVES = ("statements", "mlm")
# The generated worlds statements come from, and the input sizes a model for each needs by default
# (NLVR's 400x100 renderings at 256x64, NLVR sentences in 32 tokens).
WORLD_SIZES = {"nlvr_world": {"image_size": (64, 256), "sequence_length": 32}, "shapes": {}}
WORLDS = tuple(WORLD_SIZES)


def pretrain(
    output_dir: str,
    objective: str = "statements",
    *,
    world: str = "nlvr_world",
    texts: Sequence[str] = (),
    init: str | None = None,
    preset: str | None = None,
    fusion: str | None = None,
    config_overrides: dict | None = None,
    epochs: int = 5,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    vocabulary_size: int | None = None,
    scenes: int = 16000,
    validation_scenes: int = 1000,
    seed: int = 0,
    verbose: int | str = "auto",
) -> GeminiBundle:
    """Pre-trains a model with `objective` and saves the bundle in `output_dir`; returns it.

    Args:
        objective: "statements" or "mlm" (see the module docstring).
        world: where statements come from, "nlvr_world" or "shapes"; it also sets
            the default input sizes (`WORLD_SIZES`).
        texts: text sources (`read_texts`: .txt files, dataset paths whose train
            part is read, "nlvr_world" / "shapes" statements): the MLM corpus, and
            for both objectives texts the vocabulary is learnt from.
        init: a bundle to start from (`train(init=...)`): its config and vocabulary are kept.
        preset, fusion, config_overrides, epochs, batch_size, learning_rate,
            vocabulary_size, seed, verbose: as for `train`.
        scenes, validation_scenes: generated scenes (statements), or statements
            drawn for the "nlvr_world" / "shapes" entries of `texts`.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"Unknown objective {objective!r}; choose one of {list(OBJECTIVES)}.")
    if world not in WORLDS:
        raise ValueError(f"Unknown world {world!r}; choose one of {list(WORLDS)}.")
    corpus = read_texts(texts, scenes, seed)
    overrides = {**({} if init else WORLD_SIZES[world]), **(config_overrides or {})}
    record = {"objective": objective, "world": world, "texts": list(texts)}
    if objective == "statements":
        return train(
            output_dir,
            world,
            task="classify",
            matching="listwise",
            preset=preset,
            fusion=fusion,
            config_overrides=overrides,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            vocabulary_size=vocabulary_size,
            vocabulary_texts=corpus,
            train_scenes=scenes,
            validation_scenes=validation_scenes,
            init=init,
            seed=seed,
            verbose=verbose,
            pretraining=record,
        )
    if init:
        raise ValueError("--objective mlm starts from scratch (it learns the vocabulary); drop --init.")
    if not corpus:
        raise DataError("--objective mlm needs text: pass --text FILE.txt, a dataset folder, or nlvr_world.")
    settings = FitSettings(epochs, batch_size, learning_rate, seed=seed, verbose=verbose)
    config = config_for(preset, "classify", {**({"fusion": fusion} if fusion else {}), **overrides})
    return _pretrain_masked_lm(output_dir, corpus, config, vocabulary_size or 1000, settings, record)


def _pretrain_masked_lm(
    output_dir: str, corpus: list[str], config: GeminiConfig, vocabulary_size: int, settings: FitSettings, record: dict
) -> GeminiBundle:
    """MLM on `corpus`: the validation part by the one split rule (`data.splits`), the rest trains."""
    held_out = parts_of(corpus) == "validation"
    train_texts = [text for text, out in zip(corpus, held_out) if not out]
    validation_texts = [text for text, out in zip(corpus, held_out) if out]
    if len(train_texts) < settings.batch_size or not validation_texts:
        raise DataError(
            f"MLM pre-training needs at least {settings.batch_size} training texts and one validation text; "
            f"the corpus has {len(train_texts)} and {len(validation_texts)}."
        )
    keras.utils.set_random_seed(settings.seed)
    preprocessor = TextPreprocessor(learn_vocabulary(train_texts, vocabulary_size), config.sequence_length)
    config.vocabulary_size = preprocessor.vocabulary_size
    model = gemini_model(config)
    masked_lm = TextMaskedLM(model.text_encoder)
    masked_lm.compile(
        optimizer=adamw(settings.learning_rate, settings.steps(len(train_texts)), settings.weight_decay),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="masked_accuracy")],
    )
    history = fit(
        masked_lm,
        masked_dataset(train_texts, preprocessor, settings.batch_size, shuffle=True, seed=settings.seed),
        masked_dataset(validation_texts, preprocessor, settings.batch_size, seed=settings.seed),
        settings,
        os.path.join(output_dir, "run"),
    )
    scores = masked_lm.evaluate(
        masked_dataset(validation_texts, preprocessor, settings.batch_size, seed=settings.seed),
        return_dict=True,
        verbose=0,
    )
    bundle = GeminiBundle(
        model,
        preprocessor,
        config,
        LABEL_NAMES["classify"],
        metrics={**scores, "examples": float(len(validation_texts))},
        history=history_dict(history),
        trained_parts=("text_encoder",),
        pretraining={**record, "texts_read": len(corpus)},
    )
    bundle.save(output_dir)
    return bundle
