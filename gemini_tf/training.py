"""Training with plain Keras: strategy scope, AdamW + warmup/cosine, callbacks, `fit`.

`build_model` creates and compiles the model inside the chosen `tf.distribute`
strategy's scope, so moving from one device to `MirroredStrategy` changes no
model code. `fit` adds the callbacks every run wants: best-checkpoint saving,
early stopping, TensorBoard logs and BackupAndRestore (an interrupted run
resumes at the epoch where it stopped).
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import tensorflow as tf

from gemini_tf.bundle import GeminiBundle
from gemini_tf.config import GeminiConfig
from gemini_tf.data import pipeline, shapes
from gemini_tf.evaluation import evaluate_shapes
from gemini_tf.models.gemini import GeminiModel, gemini_model
from gemini_tf.data.captions import CaptionSet
from gemini_tf.data.records import read_images
from gemini_tf.data.sources import labelled_dataset, labelled_splits, labelled_texts, load_captions
from gemini_tf.models.contrastive_matcher import ContrastiveMatcher
from gemini_tf.models.group_matcher import (
    GroupMatcher, group_accuracy, group_matching_loss, pair_accuracy,
)
from gemini_tf.preprocessing.text import TextPreprocessor, learn_vocabulary

STRATEGIES = ("default", "mirrored")
MATCHING = ("groups", "contrastive", "pairs")


def get_strategy(name: str = "default") -> tf.distribute.Strategy:
    """"default": the current (single-device) strategy; "mirrored": all local devices."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    raise ValueError(f"Unknown strategy {name!r}; choose one of {list(STRATEGIES)}.")


def learning_rate_schedule(
    peak: float, total_steps: int, warmup_fraction: float = 0.05
) -> keras.optimizers.schedules.LearningRateSchedule:
    """Linear warmup to `peak`, then cosine decay to 2% of it."""
    warmup = max(1, int(total_steps * warmup_fraction))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=max(1, total_steps - warmup),
        warmup_target=peak,
        warmup_steps=warmup,
        alpha=0.02,
    )


def adamw(learning_rate: float, total_steps: int, weight_decay: float = 0.01) -> keras.optimizers.Optimizer:
    """AdamW with warmup + cosine decay and gradient clipping: every trainer's optimizer."""
    return keras.optimizers.AdamW(
        learning_rate_schedule(learning_rate, total_steps), weight_decay=weight_decay, clipnorm=1.0
    )


def compile_model(
    model: keras.Model,
    total_steps: int,
    learning_rate: float = 1e-3,
    weight_decay: float = 0.01,
) -> keras.Model:
    """Compiles with AdamW (warmup + cosine) and the task's loss and metrics."""
    binary = model.output_shape[-1] == 1
    model.compile(
        optimizer=adamw(learning_rate, total_steps, weight_decay),
        loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
        metrics=["accuracy", keras.metrics.AUC(name="auc")] if binary else ["accuracy"],
    )
    return model


def build_model(
    config: GeminiConfig,
    total_steps: int,
    learning_rate: float = 1e-3,
    strategy: str = "default",
) -> GeminiModel:
    """Builds and compiles a `GeminiModel` under the named strategy's scope."""
    with get_strategy(strategy).scope():
        model = gemini_model(config)
        return compile_model(model, total_steps, learning_rate)


def fit(
    model: keras.Model,
    train_data: tf.data.Dataset,
    validation_data: tf.data.Dataset | None,
    epochs: int,
    output_dir: str,
    patience: int = 3,
    verbose: int | str = "auto",
    extra_callbacks: list[keras.callbacks.Callback] | None = None,
) -> keras.callbacks.History:
    """`model.fit` with checkpoint, early stopping, TensorBoard and BackupAndRestore.

    Checkpoints, logs and the backup live in `output_dir`; the best weights
    (by validation loss) are restored at the end. Resuming from a backup is
    refused when the model's config differs from the interrupted run's, so a
    changed setting never silently continues old weights.
    """
    _check_resume(output_dir, model)
    monitor = "val_loss" if validation_data is not None else "loss"
    callbacks = [
        keras.callbacks.BackupAndRestore(os.path.join(output_dir, "backup")),
        keras.callbacks.ModelCheckpoint(
            os.path.join(output_dir, "best.weights.h5"), monitor=monitor,
            save_best_only=True, save_weights_only=True,
        ),
        keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=True),
        keras.callbacks.TensorBoard(os.path.join(output_dir, "logs"), write_graph=False),
        *(extra_callbacks or []),
    ]
    return model.fit(
        train_data, validation_data=validation_data, epochs=epochs,
        callbacks=callbacks, verbose=verbose, shuffle=False,  # datasets shuffle themselves
    )


def _check_resume(output_dir: str, model: keras.Model) -> None:
    os.makedirs(output_dir, exist_ok=True)
    signature_file = os.path.join(output_dir, "model_config.json")
    signature = json.dumps(model.get_config(), sort_keys=True, default=str)
    if os.path.isdir(os.path.join(output_dir, "backup")) and os.path.isfile(signature_file):
        with open(signature_file) as f:
            if f.read() != signature:
                raise ValueError(
                    f"{output_dir} holds an interrupted run of a different model; resume it with the "
                    "same settings, or choose another output folder (or delete that one)."
                )
    with open(signature_file, "w") as f:
        f.write(signature)


def train(
    output_dir: str,
    task: str = "itm",
    data: str = "shapes",
    preset: str = "tiny",
    fusion: str = "cross_attention",
    epochs: int = 5,
    batch_size: int = 32,
    learning_rate: float = 5e-4,
    train_scenes: int = 16000,
    validation_scenes: int = 1000,
    group_size: int = 4,
    matching: str | None = None,
    contrastive_loss: str = "infonce",
    vocabulary_size: int = 1000,
    validation_images: int = 300,
    max_train_images: int | None = None,
    config_overrides: dict | None = None,
    strict: bool = False,
    allow_outside_root: bool = False,
    seed: int = 0,
    strategy: str = "default",
    verbose: int | str = "auto",
):
    """Trains a Gemini model and saves a bundle in `output_dir`; returns the `GeminiBundle`.

    data="shapes" (the embedded generator) or a path (`data.sources.detect`):
    task="itm" takes Flickr8k, COCO or a caption manifest; task="classify" takes
    NLVR, a labelled manifest or TFRecord shards. Bad rows are skipped and
    counted (`strict=True`: stop at the first). Caption data holds out its last
    `validation_images` images (and uses at most `max_train_images` for training
    when given). task="itm" trains matching: `matching="groups"` (Shapes
    default) trains listwise on one-difference caption groups with
    `GroupMatcher`; `matching="contrastive"` (default for photos) trains
    ITC + ITM on mined hard negatives with `ContrastiveMatcher`, whose
    embeddings the bundle keeps for retrieval. task="classify" on Shapes trains
    yes/no statements, by default listwise on one-difference statement groups
    (`matching="groups"`), or with binary cross-entropy on pairs
    (`matching="pairs"`); on real data always with binary cross-entropy.
    """
    matching = matching or ("groups" if data == "shapes" else "contrastive")
    if matching not in MATCHING:
        raise ValueError(f"Unknown matching {matching!r}; choose one of {list(MATCHING)}.")
    config = GeminiConfig.from_preset(preset, fusion=fusion, task=task, **(config_overrides or {}))
    keras.utils.set_random_seed(seed)
    progress = bool(verbose)
    if data != "shapes" and task == "classify":
        train_split, validation_split = labelled_splits(data, strict, allow_outside_root, progress)
        return train_classifier(output_dir, config, train_split, validation_split, epochs, batch_size,
                                learning_rate, vocabulary_size, seed, strategy, verbose)
    if data != "shapes":
        captions = load_captions(data, "train", strict, progress, allow_outside_root)
        if max_train_images:
            keep = min(len(captions.images), max_train_images + validation_images)
            captions = captions.select_images(np.arange(keep))
        train_set, validation_set = captions.split(validation_images)
        return _train_contrastive(output_dir, config, train_set, validation_set, epochs, batch_size,
                                  learning_rate, contrastive_loss, vocabulary_size, seed, strategy, verbose)
    size, grid = config.image_size[0], config.grid_size[0]
    if task == "itm" and matching == "contrastive":
        def captions(num_scenes: int, split: str) -> CaptionSet:
            pairs = shapes.make_pairs(num_scenes, split, seed, size, grid, progress=progress)
            positive = pairs.labels == 1
            return CaptionSet(pairs.images[positive], [t for t, p in zip(pairs.texts, positive) if p],
                              np.arange(int(positive.sum())))

        train_set, validation_set = captions(train_scenes, "train"), captions(validation_scenes, "validation")
        return _train_contrastive(output_dir, config, train_set, validation_set,
                                  epochs, batch_size, learning_rate, contrastive_loss, vocabulary_size,
                                  seed, strategy, verbose, evaluate_on_shapes=validation_scenes)
    listwise = matching == "groups"
    if listwise:
        splits = [shapes.make_groups(n, split, seed, size, grid, group_size, statements=task == "classify",
                                     progress=progress)
                  for n, split in ((train_scenes, "train"), (validation_scenes, "validation"))]
        texts = [t for group in splits[0].texts for t in group]
    else:
        splits = [shapes.make_pairs(n, split, seed, size, grid, statements=task == "classify", progress=progress)
                  for n, split in ((train_scenes, "train"), (validation_scenes, "validation"))]
        texts = splits[0].texts
    preprocessor = TextPreprocessor(learn_vocabulary(texts, vocabulary_size), config.sequence_length)
    config.vocabulary_size = preprocessor.vocabulary_size

    def dataset(part, shuffle):
        if listwise:
            return pipeline.from_groups(part.images, part.texts, preprocessor, config.image_size,
                                        batch_size, shuffle, seed)
        return pipeline.from_arrays(part.images, part.texts, part.labels, preprocessor,
                                    config.image_size, batch_size, shuffle, seed)

    train_data, validation_data = dataset(splits[0], True), dataset(splits[1], False)
    total_steps = epochs * (len(splits[0]) // batch_size)
    with get_strategy(strategy).scope():
        model = gemini_model(config)
        if listwise:
            trainer = GroupMatcher(model, embedding_dim=config.hidden_dim)
            trainer.compile(optimizer=adamw(learning_rate, total_steps), loss=group_matching_loss,
                            metrics=[group_accuracy, pair_accuracy])
            trainer(next(iter(train_data))[0])  # BackupAndRestore needs built weights.
        else:
            trainer = compile_model(model, total_steps, learning_rate)
    history = fit(trainer, train_data, validation_data, epochs,
                  os.path.join(output_dir, "run"), verbose=verbose)
    bundle = GeminiBundle(
        model, preprocessor, config, ("no_match", "match") if task == "itm" else ("false", "true"),
        history=_history(history),
    )
    bundle.metrics = evaluate_shapes(bundle, "validation", validation_scenes, seed)
    bundle.save(output_dir)
    return bundle


def _history(history: keras.callbacks.History) -> dict[str, list[float]]:
    return {k: [float(x) for x in v] for k, v in history.history.items()}


def caption_datasets(
    train_set: CaptionSet, validation_set: CaptionSet, preprocessor: TextPreprocessor,
    image_size: tuple[int, int], batch_size: int, seed: int = 0, progress: bool = False,
) -> tuple[tf.data.Dataset, tf.data.Dataset, np.ndarray]:
    """Training (augmented, shuffled) and validation datasets of `ContrastiveMatcher` inputs.

    Photos are decoded once into memory, at 5/4 of `image_size` so random
    crops keep detail. Returns the validation images too (uint8, for retrieval).
    """
    def pixels(captions: CaptionSet, size):
        images = captions.images
        return read_images(images, size, progress) if isinstance(images[0], str) else np.asarray(images)

    cache_size = tuple(s * 5 // 4 for s in image_size)
    train_data = pipeline.from_captions(
        pixels(train_set, cache_size), train_set.texts, train_set.image_index, preprocessor,
        image_size, batch_size, shuffle=True, augment=True, seed=seed)
    validation_images = pixels(validation_set, image_size)
    validation_data = pipeline.from_captions(
        validation_images, validation_set.texts, validation_set.image_index, preprocessor,
        image_size, batch_size)
    return train_data, validation_data, validation_images


def _train_contrastive(output_dir, config, train_set, validation_set, epochs, batch_size, learning_rate,
                       loss, vocabulary_size, seed, strategy, verbose, evaluate_on_shapes: int = 0):
    """ITC + ITM joint pre-training (`ContrastiveMatcher`) on captioned images."""
    from gemini_tf.retrieval import evaluate_retrieval, flat_metrics

    preprocessor = TextPreprocessor(learn_vocabulary(train_set.texts, vocabulary_size), config.sequence_length)
    config.vocabulary_size = preprocessor.vocabulary_size
    train_data, validation_data, validation_images = caption_datasets(
        train_set, validation_set, preprocessor, config.image_size, batch_size, seed, bool(verbose))
    total_steps = epochs * (len(train_set) // batch_size)
    with get_strategy(strategy).scope():
        model = gemini_model(config)
        matcher = ContrastiveMatcher(model, embedding_dim=config.hidden_dim, loss=loss, seed=seed)
        matcher.compile(optimizer=adamw(learning_rate, total_steps))
        matcher(next(iter(train_data))[0])  # BackupAndRestore needs built weights.
    history = fit(matcher, train_data, validation_data, epochs, os.path.join(output_dir, "run"),
                  verbose=verbose)
    bundle = GeminiBundle(model, preprocessor, config, ("no_match", "match"), history=_history(history),
                          matcher=matcher)
    retrieval = evaluate_retrieval(matcher, preprocessor, validation_images, validation_set.texts,
                                   validation_set.image_index, config.image_size, k_test=16)
    bundle.metrics = flat_metrics(retrieval)
    if evaluate_on_shapes:
        bundle.metrics.update(evaluate_shapes(bundle, "validation", evaluate_on_shapes, seed))
    bundle.save(output_dir)
    return bundle


def train_classifier(output_dir: str, config: GeminiConfig, train_split, validation_split, epochs: int,
                     batch_size: int = 32, learning_rate: float = 5e-4, vocabulary_size: int = 1000,
                     seed: int = 0, strategy: str = "default", verbose: int | str = "auto",
                     model_fn=gemini_model) -> GeminiBundle:
    """Binary classification of (image, text) pairs with binary cross-entropy.

    Splits are anything `labelled_dataset` reads. `model_fn(config)` builds the
    model: `gemini_model` by default, or a baseline from `gemini_tf.baselines`.
    """
    from gemini_tf.evaluation import evaluate_dataset

    texts = labelled_texts(train_split)
    preprocessor = TextPreprocessor(learn_vocabulary(texts, vocabulary_size), config.sequence_length)
    config.vocabulary_size = preprocessor.vocabulary_size
    train_data = labelled_dataset(train_split, preprocessor, config.image_size, batch_size, True, seed)
    validation_data = labelled_dataset(validation_split, preprocessor, config.image_size, batch_size)
    with get_strategy(strategy).scope():
        model = compile_model(model_fn(config), epochs * max(1, len(texts) // batch_size), learning_rate)
    history = fit(model, train_data, validation_data, epochs, os.path.join(output_dir, "run"), verbose=verbose)
    bundle = GeminiBundle(model, preprocessor, config, ("false", "true"), history=_history(history))
    bundle.metrics = evaluate_dataset(model, validation_data)
    bundle.save(output_dir)
    return bundle
