"""Multi-worker training on localhost: two worker processes joined by `TF_CONFIG`."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import keras
import numpy as np
import tensorflow as tf

from gemini_tf.models.gemini import gemini_model
from gemini_tf.training import FitSettings, fit
from gemini_tf.training.loop import STRATEGIES
from gemini_tf.training.multi_worker import is_chief, keras_workarounds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def start_workers(script: str, num_workers: int = 2) -> list[subprocess.Popen]:
    """Starts `script` as every worker of a localhost cluster (free ports, one `TF_CONFIG` each)."""
    cluster = {"worker": [f"localhost:{free_port()}" for _ in range(num_workers)]}
    return [
        subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={
                **os.environ,
                "TF_CPP_MIN_LOG_LEVEL": "2",
                "PYTHONPATH": ROOT,
                "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
            },
        )
        for i in range(num_workers)
    ]


def finish_workers(processes: list[subprocess.Popen], timeout: int = 240) -> list[dict]:
    """The JSON each worker printed last (every worker must succeed)."""
    try:
        outputs = [process.communicate(timeout=timeout) for process in processes]
    finally:
        for process in processes:
            process.kill()
    for process, (stdout, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stdout + stderr[-3000:]
    return [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]


UPSTREAM_SCRIPT = textwrap.dedent(
    """
    import json
    from gemini_tf.training.multi_worker import keras_workarounds, multi_worker_strategy
    strategy = multi_worker_strategy()  # before any other TensorFlow op
    import keras, numpy as np, tensorflow as tf
    from keras.src.backend.tensorflow import trainer as tf_trainer

    x, y = np.ones((16, 4), "float32"), np.ones((16, 1), "float32")
    with strategy.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
    bugs = []
    try:
        model.fit(x, y, batch_size=8, verbose=0)
    except ValueError as error:  # keras-team/keras#20585: the batch is reduced to build the model
        if "PerReplica" in str(error):
            bugs.append("symbolic_build")
    try:  # keras-team/keras#20329: scalar logs are reduced along axis 0
        tf_trainer.reduce_per_replica({"loss": strategy.run(lambda: tf.constant(1.0))}, strategy, "auto")
    except (ValueError, tf.errors.InvalidArgumentError) as error:
        if "Invalid reduction dimension" in str(error):
            bugs.append("reduce_per_replica")
    with keras_workarounds(strategy):
        history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    print(json.dumps({"bugs": bugs, "loss": history.history["loss"]}))
    """
)


def test_keras_still_needs_the_multi_worker_workaround():
    """Fails when Keras fixes either upstream bug: then delete `training/multi_worker.py`'s patch for it."""
    for result in finish_workers(start_workers(UPSTREAM_SCRIPT)):
        assert result["bugs"] == ["symbolic_build", "reduce_per_replica"], (
            f"Keras {keras.__version__} no longer fails as keras-team/keras#20585 / #20329 describe "
            f"(still failing: {result['bugs']}); remove the fixed workaround from gemini_tf/training/multi_worker.py."
        )
        assert len(result["loss"]) == 2 and all(np.isfinite(result["loss"]))


TINY = {"vocabulary_size": 50, "fusion": "concat", "image_size": (32, 32), "patch_size": 16}
GLOBAL_BATCH, STEPS = 8, 3


def tiny_data():
    rng = np.random.default_rng(0)
    rows = GLOBAL_BATCH * STEPS
    x = (rng.integers(1, 50, (rows, 12)).astype("int32"), rng.random((rows, 32, 32, 3)).astype("float32"))
    return tf.data.Dataset.from_tensor_slices((x, rng.integers(0, 2, rows).astype("float32"))).batch(GLOBAL_BATCH)


def train_tiny(strategy, run_dir: str):
    """Trains the tiny model for STEPS steps with `fit`; returns (per-step running losses, weights)."""
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = gemini_model("tiny", **TINY)
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="binary_crossentropy")
    losses = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda _, logs: losses.append(float(logs["loss"])))
    fit(model, tiny_data(), None, FitSettings(epochs=1, batch_size=GLOBAL_BATCH, verbose=0), run_dir, [record])
    return losses, model.get_weights()


WORKER_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from gemini_tf.training import get_strategy
    strategy = get_strategy("multi_worker")  # before any other TensorFlow op
    import numpy as np
    sys.path.insert(0, "tests")
    from test_multi_worker import train_tiny
    from gemini_tf.training.multi_worker import is_chief

    losses, weights = train_tiny(strategy, {run_dir!r})
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    np.savez(os.path.join({out!r}, f"worker{{index}}.npz"), *weights)
    print(json.dumps({{"losses": losses, "replicas": strategy.num_replicas_in_sync, "chief": is_chief(strategy)}}))
    """
)


def test_two_workers_train_like_one_worker_on_the_same_global_batch(tmp_path):
    # Each worker reads half of every global batch of 8; gradients are summed across workers.
    run_dir = tmp_path / "run"
    script = WORKER_SCRIPT.format(run_dir=str(run_dir), out=str(tmp_path))
    workers = start_workers(script)
    reference_losses, reference_weights = train_tiny(tf.distribute.get_strategy(), str(tmp_path / "reference"))
    results = finish_workers(workers)
    assert [r["chief"] for r in results] == [True, False] and {r["replicas"] for r in results} == {2}
    for index, result in enumerate(results):
        np.testing.assert_allclose(result["losses"], reference_losses, rtol=1e-4, atol=1e-5)
        with np.load(tmp_path / f"worker{index}.npz") as saved:
            for i, expected in enumerate(reference_weights):
                np.testing.assert_allclose(saved[f"arr_{i}"], expected, rtol=1e-4, atol=1e-5)
    # The chief wrote the run folder (the other worker wrote into a scratch folder).
    assert (run_dir / "best.weights.h5").is_file() and (run_dir / "logs").is_dir()


def test_multi_worker_is_a_strategy_choice_and_other_strategies_are_left_alone():
    assert "multi_worker" in STRATEGIES
    strategy = tf.distribute.get_strategy()
    assert is_chief(strategy)
    from keras.src.backend.tensorflow import trainer as tf_trainer

    upstream = tf_trainer.reduce_per_replica
    with keras_workarounds(strategy):
        assert tf_trainer.reduce_per_replica is upstream
