"""Multi-worker training: `tf.distribute.MultiWorkerMirroredStrategy` under Keras 3 `fit`.

Each worker is one process that reads the cluster from the `TF_CONFIG`
environment variable, e.g. on the second of two localhost workers:

    TF_CONFIG='{"cluster": {"worker": ["localhost:12345", "localhost:23456"]},
                "task": {"type": "worker", "index": 1}}'

Keras 3.15's TensorFlow trainer cannot `fit` under this strategy as shipped
(https://github.com/keras-team/keras/issues/20585,
https://github.com/keras-team/keras/issues/20329):

1. `TensorFlowTrainer._maybe_symbolic_build` builds the model from the first
   distributed batch reduced by `strategy.reduce("MEAN", batch, axis=None)`,
   which cannot convert the `PerReplica` batch ("Attempt to convert a value
   (PerReplica...) to a Tensor"). Only the batch's shapes are needed, so the
   workaround builds from the dataset's element spec.
2. `reduce_per_replica` reduces the step's logs across workers with
   `strategy.reduce("MEAN", value, axis=0)`, and the logs are scalars
   ("Invalid reduction dimension 0"). The workaround reduces them across
   replicas only (`axis=None`), as Keras does for one worker.

`keras_workarounds` applies both only while a `MultiWorkerMirroredStrategy`
trains (`training.loop.fit` enters it) and undoes them afterwards.
`tests/test_multi_worker.py` fails once Keras fixes either bug: then delete the
workaround.
"""

from __future__ import annotations

import contextlib
import functools

import tensorflow as tf
from keras.src import tree
from keras.src.backend.tensorflow import trainer as tf_trainer


@functools.cache
def multi_worker_strategy() -> tf.distribute.MultiWorkerMirroredStrategy:
    """The process's one `MultiWorkerMirroredStrategy` (cluster from `TF_CONFIG`).

    TensorFlow configures collective ops when the strategy is created, which it
    can only do before the process runs its first TensorFlow op: create it
    first (`training.train` does, before it opens any data). Without
    `TF_CONFIG` it trains alone on the local devices.
    """
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except (RuntimeError, ValueError) as error:
        raise RuntimeError(
            "MultiWorkerMirroredStrategy must be created before TensorFlow runs any op in this "
            "process: call get_strategy('multi_worker') first, before building models or datasets."
        ) from error


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes checkpoints, logs and the bundle: True unless it is a
    multi-worker task other than the chief (worker 0 when the cluster names no chief)."""
    resolver = strategy.cluster_resolver if is_multi_worker(strategy) else None
    if resolver is None or not resolver.task_type or resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    """Upstream's method, built from the dataset's element spec: only shapes are needed, and
    drawing a batch would also start (and reshuffle) a pass over the data before training."""
    if iterator is not None:
        data_batch = iterator.data_adapter.get_tf_dataset().element_spec
    return _UPSTREAM_SYMBOLIC_BUILD(self, data_batch=data_batch)


def _reduce_per_replica(values, strategy, reduction):
    """Upstream's function, but "mean" logs are averaged across replicas, not along axis 0."""
    if reduction in ("auto", "mean"):  # "auto" means "mean" off TPUs
        return tree.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), values)
    return _UPSTREAM_REDUCE_PER_REPLICA(values, strategy, reduction)


_UPSTREAM_SYMBOLIC_BUILD = tf_trainer.TensorFlowTrainer._maybe_symbolic_build
_UPSTREAM_REDUCE_PER_REPLICA = tf_trainer.reduce_per_replica


@contextlib.contextmanager
def keras_workarounds(strategy: tf.distribute.Strategy):
    """Patches Keras' TensorFlow trainer for `fit`/`evaluate` under a `MultiWorkerMirroredStrategy`
    (the two upstream bugs of this module's docstring); a no-op for any other strategy.

    The patch is process-wide while the block runs, and undone when it ends.
    """
    if not is_multi_worker(strategy):
        yield
        return
    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build
    tf_trainer.reduce_per_replica = _reduce_per_replica
    try:
        yield
    finally:
        tf_trainer.TensorFlowTrainer._maybe_symbolic_build = _UPSTREAM_SYMBOLIC_BUILD
        tf_trainer.reduce_per_replica = _UPSTREAM_REDUCE_PER_REPLICA
