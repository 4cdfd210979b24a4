"""The reusable fit loop: strategy scope, precision, AdamW + warmup/cosine, callbacks, resume.

Every recipe ends here. `fit` adds the callbacks every run wants: each epoch's
wall-clock seconds in the history (`epoch_seconds`), best-checkpoint saving,
early stopping, TensorBoard logs and BackupAndRestore (an interrupted
run resumes at the epoch where it stopped; a backup of a *different* model is
refused rather than silently continued). Under multi-worker training only the
chief writes them into the run folder (`multi_worker`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
import time

import keras
import tensorflow as tf

from gemini_tf.training import multi_worker
from gemini_tf.training.schedule import WarmupCosineDecay

STRATEGIES = ("default", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_bfloat16")


@dataclasses.dataclass
class FitSettings:
    """How long and how fast to train: the knobs every recipe shares.

    Args:
        epochs: passes over the training data.
        batch_size: examples (images) per step.
        learning_rate: peak AdamW learning rate (linear warmup, cosine decay).
        weight_decay: AdamW weight decay.
        patience: early-stopping patience in epochs (on validation loss).
        strategy: "default" (one device), "mirrored" (all local devices) or
            "multi_worker" (the workers of `TF_CONFIG`, see `multi_worker`).
        precision: "float32", or "mixed_bfloat16" (bfloat16 compute, float32
            weights; see `precision_policy`).
        seed: seed of weights, shuffling and sampling.
        verbose: Keras verbosity (0 silent, 2 one line per epoch, "auto").
    """

    epochs: int = 5
    batch_size: int = 32
    learning_rate: float = 5e-4
    weight_decay: float = 0.01
    patience: int = 3
    strategy: str = "default"
    precision: str = "float32"
    seed: int = 0
    verbose: int | str = "auto"

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"Unknown strategy {self.strategy!r}; choose one of {list(STRATEGIES)}.")
        if self.precision not in PRECISIONS:
            raise ValueError(f"Unknown precision {self.precision!r}; choose one of {list(PRECISIONS)}.")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be at least 1, got {self.epochs}, {self.batch_size}.")

    def steps(self, num_examples: int, drop_remainder: bool = False) -> int:
        """Optimizer steps of the whole run: the one way steps are counted."""
        per_epoch = num_examples // self.batch_size if drop_remainder else -(-num_examples // self.batch_size)
        return self.epochs * max(1, per_epoch)


def get_strategy(name: str = "default") -> tf.distribute.Strategy:
    """ "default": the current (single-device) strategy; "mirrored": all local devices;
    "multi_worker": the cluster of `TF_CONFIG`, created before any other TensorFlow op
    (`multi_worker.multi_worker_strategy`)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return multi_worker.multi_worker_strategy()
    raise ValueError(f"Unknown strategy {name!r}; choose one of {list(STRATEGIES)}.")


@contextlib.contextmanager
def precision_policy(precision: str = "float32"):
    """Layers built in this block use the Keras dtype policy `precision`; the previous global
    policy comes back afterwards, also on error.

    Under "mixed_bfloat16" weights stay float32 and layers compute in bfloat16,
    except those that set `dtype="float32"`: the heads' logits, the retrieval
    projections and the contrastive head, so similarities, sigmoids and losses
    stay float32.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}; choose one of {list(PRECISIONS)}.")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def learning_rate_schedule(
    peak: float, total_steps: int, warmup_fraction: float = 0.05
) -> keras.optimizers.schedules.LearningRateSchedule:
    """Linear warmup to `peak`, then cosine decay to 2% of it (`WarmupCosineDecay`)."""
    warmup = max(1, int(total_steps * warmup_fraction))
    return WarmupCosineDecay(peak, warmup, max(1, total_steps - warmup), alpha=0.02)


def adamw(learning_rate: float, total_steps: int, weight_decay: float = 0.01) -> keras.optimizers.Optimizer:
    """AdamW with warmup + cosine decay and gradient clipping: every recipe's optimizer."""
    return keras.optimizers.AdamW(
        learning_rate_schedule(learning_rate, total_steps), weight_decay=weight_decay, clipnorm=1.0
    )


def fit(
    trainer: keras.Model,
    train_data: tf.data.Dataset,
    validation_data: tf.data.Dataset | None,
    settings: FitSettings,
    run_dir: str,
    callbacks: list[keras.callbacks.Callback] | None = None,
    steps_per_epoch: int | None = None,
) -> keras.callbacks.History:
    """`trainer.fit` with checkpoint, early stopping, TensorBoard and BackupAndRestore in `run_dir`.

    The best weights (by validation loss, else training loss) are restored at the end.
    `steps_per_epoch` is for datasets that stream the whole run (`data.curriculum`).
    Under a multi-worker strategy every worker runs the same callbacks (they
    join the same collectives), but only the chief writes into `run_dir`; the
    other workers resume from a copy of the chief's backup and write into a
    temporary folder, deleted afterwards (as the TensorFlow multi-worker guide
    prescribes).
    """
    strategy = trainer.distribute_strategy
    chief = multi_worker.is_chief(strategy)
    if chief:
        _check_resume(run_dir, trainer)
    monitor = "val_loss" if validation_data is not None else "loss"
    with _writable_run_dir(run_dir, chief) as writable, multi_worker.keras_workarounds(strategy):
        callbacks = [
            EpochTimer(),  # first: the callbacks after it (History, TensorBoard) see its entry
            keras.callbacks.BackupAndRestore(os.path.join(writable, "backup")),
            keras.callbacks.ModelCheckpoint(
                os.path.join(writable, "best.weights.h5"),
                monitor=monitor,
                save_best_only=True,
                save_weights_only=True,
            ),
            keras.callbacks.EarlyStopping(monitor=monitor, patience=settings.patience, restore_best_weights=True),
            keras.callbacks.TensorBoard(os.path.join(writable, "logs"), write_graph=False),
            *(callbacks or []),
        ]
        return trainer.fit(
            train_data,
            validation_data=validation_data,
            epochs=settings.epochs,
            steps_per_epoch=steps_per_epoch,
            callbacks=callbacks,
            verbose=settings.verbose,
            shuffle=False,  # datasets shuffle themselves
        )


class EpochTimer(keras.callbacks.Callback):
    """Adds `epoch_seconds`, the epoch's wall-clock time (validation included), to the epoch logs."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self.start


@contextlib.contextmanager
def _writable_run_dir(run_dir: str, chief: bool):
    """`run_dir` on the chief; elsewhere a temporary folder holding a copy of the chief's backup
    (so every worker resumes at the same epoch), deleted afterwards."""
    if chief:
        yield run_dir
        return
    with tempfile.TemporaryDirectory(prefix="gemini_tf_worker_") as scratch:
        backup = os.path.join(run_dir, "backup")
        if os.path.isdir(backup):
            shutil.copytree(backup, os.path.join(scratch, "backup"))
        yield scratch


def _check_resume(run_dir: str, trainer: keras.Model) -> None:
    os.makedirs(run_dir, exist_ok=True)
    signature_file = os.path.join(run_dir, "model_config.json")
    signature = json.dumps(trainer.get_config(), sort_keys=True, default=str)
    if os.path.isdir(os.path.join(run_dir, "backup")) and os.path.isfile(signature_file):
        with open(signature_file) as f:
            if f.read() != signature:
                raise ValueError(
                    f"{run_dir} holds an interrupted run of a different model; resume it with the "
                    "same settings, or choose another output folder (or delete that one)."
                )
    with open(signature_file, "w") as f:
        f.write(signature)


def history_dict(history: keras.callbacks.History) -> dict[str, list[float]]:
    """The epochs' metrics as plain floats (for the bundle's JSON)."""
    return {k: [float(x) for x in v] for k, v in history.history.items()}
