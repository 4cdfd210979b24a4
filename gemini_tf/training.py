"""Training with plain Keras: strategy scope, AdamW + warmup/cosine, callbacks, `fit`.

`build_model` creates and compiles the model inside the chosen `tf.distribute`
strategy's scope, so moving from one device to `MirroredStrategy` changes no
model code. `fit` adds the callbacks every run wants: best-checkpoint saving,
early stopping, TensorBoard logs and BackupAndRestore (an interrupted run
resumes at the epoch where it stopped).
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from gemini_tf.bundle import GeminiBundle
from gemini_tf.config import GeminiConfig
from gemini_tf.data import pipeline, shapes
from gemini_tf.evaluation import evaluate_shapes
from gemini_tf.models.gemini import GeminiModel, gemini_model
from gemini_tf.models.group_matcher import (
    GroupMatcher, group_accuracy, group_matching_loss, pair_accuracy,
)
from gemini_tf.preprocessing.text import TextPreprocessor, learn_vocabulary

STRATEGIES = ("default", "mirrored")


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


def compile_model(
    model: keras.Model,
    total_steps: int,
    learning_rate: float = 1e-3,
    weight_decay: float = 0.01,
) -> keras.Model:
    """Compiles with AdamW (warmup + cosine) and the task's loss and metrics."""
    binary = model.output_shape[-1] == 1
    model.compile(
        optimizer=keras.optimizers.AdamW(
            learning_rate_schedule(learning_rate, total_steps),
            weight_decay=weight_decay,
            clipnorm=1.0,
        ),
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
    (by validation loss) are restored at the end.
    """
    os.makedirs(output_dir, exist_ok=True)
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
    seed: int = 0,
    strategy: str = "default",
    verbose: int | str = "auto",
):
    """Trains a Gemini model on the embedded Shapes data and saves a bundle in `output_dir`.

    task="itm": caption groups (true caption + one-difference negatives) trained
    listwise with `GroupMatcher`; task="classify": yes/no statements trained with
    binary cross-entropy. Returns the `GeminiBundle` (also saved to `output_dir`).
    """
    if data != "shapes":
        raise ValueError(f"Unknown data {data!r}: this version trains on 'shapes' only.")
    config = GeminiConfig.from_preset(preset, fusion=fusion, task=task)
    keras.utils.set_random_seed(seed)
    size, grid = config.image_size[0], config.image_size[0] // config.patch_size
    if task == "itm":
        splits = [shapes.make_groups(n, split, seed, size, grid, group_size, progress=bool(verbose))
                  for n, split in ((train_scenes, "train"), (validation_scenes, "validation"))]
        texts = [t for group in splits[0].texts for t in group]
    else:
        splits = [shapes.make_pairs(n, split, seed, size, grid, statements=True, progress=bool(verbose))
                  for n, split in ((train_scenes, "train"), (validation_scenes, "validation"))]
        texts = splits[0].texts
    preprocessor = TextPreprocessor(learn_vocabulary(texts), config.sequence_length)
    config.vocabulary_size = preprocessor.vocabulary_size

    def dataset(part, shuffle):
        if task == "itm":
            return pipeline.from_groups(part.images, part.texts, preprocessor, config.image_size,
                                        batch_size, shuffle, seed)
        return pipeline.from_arrays(part.images, part.texts, part.labels, preprocessor,
                                    config.image_size, batch_size, shuffle, seed)

    train_data, validation_data = dataset(splits[0], True), dataset(splits[1], False)
    total_steps = epochs * (len(splits[0]) // batch_size)
    with get_strategy(strategy).scope():
        model = gemini_model(config)
        if task == "itm":
            trainer = GroupMatcher(model, embedding_dim=config.hidden_dim)
            trainer.compile(
                optimizer=keras.optimizers.AdamW(
                    learning_rate_schedule(learning_rate, total_steps), weight_decay=0.01, clipnorm=1.0
                ),
                loss=group_matching_loss,
                metrics=[group_accuracy, pair_accuracy],
            )
            trainer(next(iter(train_data))[0])  # BackupAndRestore needs built weights.
        else:
            trainer = compile_model(model, total_steps, learning_rate)
    history = fit(trainer, train_data, validation_data, epochs,
                  os.path.join(output_dir, "run"), verbose=verbose)
    bundle = GeminiBundle(
        model, preprocessor, config, ("no_match", "match") if task == "itm" else ("false", "true"),
        history={k: [float(x) for x in v] for k, v in history.history.items()},
    )
    bundle.metrics = evaluate_shapes(bundle, "validation", validation_scenes, seed)
    bundle.save(output_dir)
    return bundle
