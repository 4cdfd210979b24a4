"""Training throughput of the `small` preset: input pipeline, float32 vs mixed_bfloat16, FLOPs, CLIP.

    python benchmarks/training_throughput.py                 # Flickr8k if present, else Shapes captions
    python benchmarks/training_throughput.py --steps 3 --warmup 1 --examples 256   # does it run?

On the same cached batches of the contrastive recipe (ITC + ITM on mined
negatives; Flickr8k from $GEMINI_TF_DATA/flickr8k, else Shapes captions):

(a) the input pipeline alone: examples/s of iterating the recipe's tf.data dataset;
(b) training samples/s of gemini_tf in float32 and mixed_bfloat16, after `--warmup` steps;
(c) FLOPs per training sample = 3 x the forward FLOPs of one trainer step (TF's
    profiler on the traced forward; einsums, which it does not count, counted
    from their shapes), and the achieved FLOP/s as a share of this machine's
    float32 matmul peak (measured here with a large tf.matmul; 89 GFLOP/s when
    first measured);
(d) keras-hub `CLIPBackbone` at about gemini_tf's parameter count on the same batches.

When mixed_bfloat16 is under 1.5x faster, `profile` times each encoder's
forward + backward in both precisions and says whether the CPU has native
bfloat16 instructions (AVX512_BF16 / AMX).
"""

from __future__ import annotations

import argparse
import os
import time

import keras
import numpy as np
import tensorflow as tf

from gemini_tf.baselines.clip import clip_matcher
from gemini_tf.config import GeminiConfig
from gemini_tf.data.paths import ENV_VAR
from gemini_tf.data.sources import ShapesSource, open_source
from gemini_tf.models.contrastive_trainer import ContrastiveTrainer
from gemini_tf.models.gemini import gemini_model
from gemini_tf.preprocessing.text import TextPreprocessor, learn_vocabulary
from gemini_tf.training.loop import PRECISIONS, adamw, precision_policy

from results_file import merge_results

NOTED_PEAK = 89e9  # float32 matmul FLOP/s of this machine, as first measured


def open_captions(args, image_size):
    """(name, CaptionSet) of the training captions: Flickr8k if there, else Shapes."""
    flickr = os.path.join(os.environ.get(ENV_VAR, ""), "flickr8k")
    if os.environ.get(ENV_VAR) and os.path.isdir(flickr):
        return "flickr8k", open_source(flickr).captions("train").first(args.examples)
    return "shapes", ShapesSource(image_size=image_size[0], scenes={"train": args.examples, "validation": 1}).captions(
        "train"
    )


def pipeline_throughput(dataset: tf.data.Dataset, batches: int) -> float:
    """Examples/s of iterating `dataset` (after one batch of warm-up)."""
    iterator = iter(dataset)
    next(iterator)
    start, examples = time.perf_counter(), 0
    for _ in range(batches):
        examples += int(tf.shape(next(iterator)[0][0])[0])  # ((token_ids, images, image_ids),)
    return examples / (time.perf_counter() - start)


def train_throughput(trainer: keras.Model, batches: tf.data.Dataset, warmup: int, batch_size: int) -> float:
    """Training samples/s over the batches after the first `warmup` steps."""
    times = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: times.append(time.perf_counter()))
    trainer.fit(batches, epochs=1, verbose=0, callbacks=[record])
    return (len(times) - warmup) * batch_size / (times[-1] - times[warmup - 1])


def forward_flops(model: keras.Model, inputs) -> float:
    """Float ops of one training-mode call of `model` on `inputs`: TF's profiler on the traced
    graph, plus einsums (which it does not count) from their shapes."""
    graph = tf.function(lambda x: model(x, training=True)).get_concrete_function(inputs).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    counted = tf.compat.v1.profiler.profile(graph, options=options).total_float_ops
    for op in graph.get_operations():
        if op.type == "Einsum":
            sizes = {}
            inputs, _ = op.get_attr("equation").decode().split("->")
            for term, tensor in zip(inputs.split(","), op.inputs):
                sizes.update(zip(term, tensor.shape.as_list()))
            counted += 2 * int(np.prod(list(sizes.values())))
    return float(counted)


def matmul_peak(size: int = 2048, repeats: int = 10) -> float:
    """float32 FLOP/s of a large tf.matmul."""
    a = tf.random.normal((size, size))
    product = tf.function(lambda x: tf.matmul(x, x))
    product(a).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        result = product(a)
    result.numpy()
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def encoder_times(config: GeminiConfig, batch, repeats: int) -> dict[str, dict[str, float]]:
    """Milliseconds of forward + backward of each encoder on `batch`, per precision."""
    token_ids, images, _ = batch
    times = {}
    for precision in PRECISIONS:
        with precision_policy(precision):
            model = gemini_model(config)
        parts = {"text_encoder": (model.text_encoder, token_ids), "image_encoder": (model.image_encoder, images)}
        times[precision] = {}
        for name, (encoder, inputs) in parts.items():

            @tf.function
            def step(inputs, encoder=encoder):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_sum(tf.cast(encoder(inputs, training=True)["pooled"], "float32"))
                return tf.linalg.global_norm(tape.gradient(loss, encoder.trainable_variables))

            step(inputs)
            start = time.perf_counter()
            for _ in range(repeats):
                step(inputs).numpy()
            times[precision][name] = 1000 * (time.perf_counter() - start) / repeats
    return times


def cpu_has_native_bfloat16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return any(flag in flags for flag in ("avx512_bf16", "amx_bf16"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per model")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (tracing, caches)")
    parser.add_argument("--examples", type=int, default=3000, help="images (Flickr8k) or scenes (Shapes)")
    parser.add_argument("--results", default="benchmarks/results/training_throughput.json")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)

    config = GeminiConfig.from_preset(args.preset)
    name, captions = open_captions(args, config.image_size)
    preprocessor = TextPreprocessor(learn_vocabulary(list(captions.texts), 1000), config.sequence_length)
    config.vocabulary_size = preprocessor.vocabulary_size
    dataset = captions.dataset(preprocessor, config.image_size, args.batch_size, shuffle=True, augment=True)
    batches = args.warmup + args.steps
    results = {"settings": vars(args), "data": name, "batch_size": args.batch_size}
    results["pipeline_examples_per_second"] = pipeline_throughput(dataset.repeat(), batches)

    cached = dataset.take(batches).cache()
    for _ in cached:  # fill the cache: every model trains on exactly these batches
        pass
    sample = next(iter(cached))[0]

    peak = matmul_peak()
    results["matmul_peak_flops"] = peak
    results["noted_matmul_peak_flops"] = NOTED_PEAK
    total_steps = batches
    for precision in PRECISIONS:
        with precision_policy(precision):
            trainer = ContrastiveTrainer(gemini_model(config), seed=0)
        trainer.compile(optimizer=adamw(5e-4, total_steps))
        samples_per_second = train_throughput(trainer, cached, args.warmup, args.batch_size)
        flops = 3 * forward_flops(trainer, sample) / args.batch_size
        results[f"gemini_{precision}"] = {
            "parameters": trainer.gemini.count_params(),
            "samples_per_second": samples_per_second,
            "training_flops_per_sample": flops,
            "flops_per_second": flops * samples_per_second,
            "share_of_measured_peak": flops * samples_per_second / peak,
            "share_of_noted_peak": flops * samples_per_second / NOTED_PEAK,
        }
        print(precision, results[f"gemini_{precision}"])

    sep_id = preprocessor.vocabulary.index("[SEP]")
    clip = clip_matcher(config, results["gemini_float32"]["parameters"], sep_id, embedding_dim=config.embedding_dim)
    clip.compile(optimizer=adamw(5e-4, total_steps))
    clip(sample)
    samples_per_second = train_throughput(clip, cached, args.warmup, args.batch_size)
    flops = 3 * forward_flops(clip, sample) / args.batch_size
    results["clip_float32"] = {
        "parameters": clip.count_params(),
        "layers_per_tower": clip.backbone.vision_encoder.num_layers,
        "samples_per_second": samples_per_second,
        "training_flops_per_sample": flops,
        "flops_per_second": flops * samples_per_second,
        "share_of_measured_peak": flops * samples_per_second / peak,
    }
    print("clip", results["clip_float32"])

    speedup = results["gemini_mixed_bfloat16"]["samples_per_second"] / results["gemini_float32"]["samples_per_second"]
    results["mixed_bfloat16_speedup"] = speedup
    if speedup < 1.5:
        native = cpu_has_native_bfloat16()
        results["profile"] = {
            "cpu_has_native_bfloat16": native,
            "encoder_forward_backward_ms": encoder_times(config, sample, max(3, args.steps // 4)),
        }
        if not native:
            results["profile"]["note"] = (
                "No AVX512_BF16 / AMX: bfloat16 matmuls and convolutions run through float32 conversions, "
                "and every layer adds casts, so mixed precision cannot be faster on this CPU."
            )
        print("profile", results["profile"])
    merge_results(args.results, {args.preset: results})


if __name__ == "__main__":
    main()
