"""Two localhost workers (MultiWorkerMirroredStrategy) vs one worker, same global batch.

    python benchmarks/multi_worker.py                 # small preset, one epoch of Shapes
    python benchmarks/multi_worker.py --scenes 64     # a quick check that it runs

Starts two worker processes joined by `TF_CONFIG` (free localhost ports); each
reads half of every global batch and gradients are summed across workers.
Then one process trains the same model on the same global batches alone.
Records every run's per-step loss (Keras' running mean over the epoch) and
samples/s (global samples per second after the first step). With the binary
recipe the curves agree until AdamW's `clipnorm=1.0` first clips: Keras clips
each replica's gradients before summing them, so from there they drift apart
(tests/test_multi_worker.py shows exact agreement without clipping). The
listwise and contrastive recipes also contrast within each worker's half batch.
On one machine the workers share its cores: samples/s shows the cost of the
collectives, not a speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

from results_file import merge_results


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def train_once(args) -> dict:
    """One run (a worker of the cluster, or the single worker): the loss curve and samples/s."""
    from gemini_tf.training import get_strategy

    strategy = get_strategy("multi_worker" if args.role == "worker" else "default")  # before any TF op
    import keras

    from gemini_tf.config import GeminiConfig
    from gemini_tf.data.sources import ShapesSource
    from gemini_tf.models.gemini import gemini_model
    from gemini_tf.preprocessing.text import TextPreprocessor, learn_vocabulary
    from gemini_tf.training import FitSettings, fit, recipe_for

    config = GeminiConfig.from_preset(args.preset)
    source = ShapesSource(seed=0, image_size=config.image_size[0], scenes={"train": args.scenes, "validation": 16})
    recipe = recipe_for(args.matching, source, "itm")
    view = recipe.view(source, "train")
    preprocessor = TextPreprocessor(learn_vocabulary(recipe.texts(view), 1000), config.sequence_length)
    config.vocabulary_size = preprocessor.vocabulary_size
    settings = FitSettings(epochs=1, batch_size=args.batch_size, verbose=0)
    data = recipe.dataset(view, preprocessor, config.image_size, settings, training=True)
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = gemini_model(config)
        trainer = recipe.trainer(model, settings, settings.steps(len(view), recipe.drop_remainder))

    losses, times = [], []

    def record(batch, logs):
        losses.append(float(logs["loss"]))
        times.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as run_dir:
        fit(trainer, data, None, settings, run_dir, [keras.callbacks.LambdaCallback(on_train_batch_end=record)])
    steps = len(losses)
    return {
        "replicas": strategy.num_replicas_in_sync,
        "examples": len(view),
        "steps": steps,
        "loss": losses,
        "samples_per_second": (steps - 1) * args.batch_size / (times[-1] - times[0]) if steps > 1 else None,
    }


def launch(args, role: str, env: dict, output: str) -> subprocess.Popen:
    command = [sys.executable, __file__, "--role", role, "--output", output]
    command += ["--preset", args.preset, "--scenes", str(args.scenes), "--batch-size", str(args.batch_size)]
    command += ["--matching", args.matching]
    return subprocess.Popen(command, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--scenes", type=int, default=1500, help="Shapes training scenes (one epoch)")
    parser.add_argument("--batch-size", type=int, default=32, help="global batch size")
    parser.add_argument("--matching", default="binary", choices=("binary", "listwise", "contrastive"))
    parser.add_argument("--results", default="benchmarks/results/multi_worker.json")
    parser.add_argument("--role", choices=("worker", "single"), help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        with open(args.output, "w") as f:
            json.dump(train_once(args), f)
        return

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # One hash seed for all: the learnt WordPiece vocabulary breaks ties in set order.
    env = {"PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]), "PYTHONHASHSEED": "0"}
    cluster = {"worker": [f"localhost:{free_port()}" for _ in range(2)]}
    with tempfile.TemporaryDirectory() as scratch:
        outputs = [os.path.join(scratch, f"worker{i}.json") for i in range(2)] + [os.path.join(scratch, "single.json")]
        workers = [
            launch(
                args,
                "worker",
                {**env, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})},
                outputs[i],
            )
            for i in range(2)
        ]
        if any(worker.wait() for worker in workers):
            sys.exit("a worker failed")
        if launch(args, "single", env, outputs[2]).wait():  # after the workers: they share the cores
            sys.exit("the single-worker run failed")
        runs = []
        for output in outputs:
            with open(output) as f:
                runs.append(json.load(f))

    single = runs[2]["loss"]
    gap = max(abs(a - b) for run in runs[:2] for a, b in zip(run["loss"], single))
    results = {
        "settings": {k: v for k, v in vars(args).items() if k not in ("role", "output")},
        "worker_0": runs[0],
        "worker_1": runs[1],
        "single_worker": runs[2],
        "max_loss_difference": gap,
    }
    print(json.dumps({k: v for k, v in results.items() if k != "settings"}, indent=2)[:3000])
    merge_results(args.results, {f"{args.preset}_{args.matching}": results})


if __name__ == "__main__":
    main()
