"""Size, latency and accuracy of every deployed variant, side by side with Keras.

Used by `benchmarks/deploy.py` (the README table) and `notebooks/03_deploy.ipynb`
(the bar charts). Latency is wall-clock per call on this machine: p50/p99 over
`repeats` calls at batch 1 and batch 32.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from gemini_tf.evaluation import binary_metrics
from gemini_tf.export.tflite import FLAVOURS, QUANTIZATIONS, interpreter

# predict(start, batch) -> probabilities of items start .. start + batch
Predict = Callable[[int, int], np.ndarray]


def _percentiles_ms(call, repeats: int) -> tuple[float, float]:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def _measure(predict: Predict, labels: np.ndarray, size_mb: float, repeats: int) -> dict[str, float]:
    row = {"size_mb": size_mb}
    for batch in (1, 32):
        row[f"p50_ms_b{batch}"], row[f"p99_ms_b{batch}"] = _percentiles_ms(lambda b=batch: predict(0, b), repeats)
    probabilities = np.concatenate([predict(s, 32) for s in range(0, len(labels), 32)])
    row["accuracy"] = binary_metrics(labels, probabilities)["accuracy"]
    return row


def compare_variants(
    bundle, saved_model_dir: str, tflite_dir: str, pairs, image_bytes: list[bytes], repeats: int = 50
) -> dict[str, dict[str, float]]:
    """One row per variant: size_mb, p50/p99 ms at batch 1 and 32, accuracy on `pairs`.

    `pairs` is a labelled `PairSet` (e.g. the Shapes test split); `image_bytes`
    are its images encoded as files, for the raw-bytes signature.
    """
    texts, labels = np.array(pairs.texts, dtype=object), pairs.labels
    images = pairs.images.astype(np.float32) / 255.0
    token_ids = bundle.preprocessor(pairs.texts).numpy()
    encoded = np.array(image_bytes, dtype=object)

    keras_probabilities = bundle.model.predict([token_ids, images], batch_size=256, verbose=0)[:, 0]
    rows = {"keras": {"accuracy": binary_metrics(labels, keras_probabilities)["accuracy"]}}

    signatures = tf.saved_model.load(saved_model_dir).signatures
    serving, tensors = signatures["serving_default"], signatures["predict_tensors"]
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(saved_model_dir) for f in files) / 1e6
    variants: dict[str, tuple[Predict, float]] = {
        "savedmodel_bytes": (
            lambda s, b: serving(
                image_bytes=tf.constant(list(encoded[s : s + b])), text=tf.constant(list(texts[s : s + b]))
            )["probability"].numpy(),
            size,
        ),
        "savedmodel_tensors": (
            lambda s, b: tensors(image=tf.constant(images[s : s + b]), token_ids=tf.constant(token_ids[s : s + b]))[
                "probability"
            ].numpy(),
            size,
        ),
    }
    for flavour, signature in FLAVOURS.items():
        for quantize in QUANTIZATIONS:
            path = os.path.join(tflite_dir, f"{flavour}_{quantize}.tflite")
            if os.path.exists(path):
                runner = interpreter(path, flavour).get_signature_runner(signature)
                variants[f"tflite_{flavour}_{quantize}"] = (
                    _tflite_predict(runner, flavour, texts, token_ids, images),
                    os.path.getsize(path) / 1e6,
                )
    for name, (predict, size_mb) in variants.items():
        rows[name] = _measure(predict, labels, size_mb, repeats)
    return rows


def _tflite_predict(runner, flavour: str, texts, token_ids, images) -> Predict:
    def predict(start: int, batch: int) -> np.ndarray:
        window = slice(start, start + batch)
        if flavour == "text":
            inputs = {"text": np.array([t.encode("utf-8") for t in texts[window]])}
        else:
            inputs = {"token_ids": token_ids[window]}
        return np.reshape(runner(**inputs, image=images[window])["probability"], -1)

    return predict
