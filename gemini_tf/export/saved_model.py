"""SavedModel export in the TF Serving layout: `saved_models/NAME/VERSION/`.

Signatures (all batched):

* `serving_default`: `image_bytes` (raw JPEG/PNG/GIF/BMP file bytes) and `text`
  (raw strings) -> `probability` (P(match) for ITM, P(true) for a
  classifier) and `label` (int32); the
  task and label names are in `assets.extra/gemini_tf.json`. Decoding, resizing and
  tokenization run inside the graph through `gemini_tf.preprocessing`, the same
  functions training uses.
* `predict_tensors`: `image` float32 [batch, H, W, 3] in [0, 1] and `token_ids`
  int32 [batch, L] -> the same outputs, for clients that preprocess themselves.
* `predict_text`: `text` strings + `image` tensors (the source of the TFLite
  `text` flavour, whose app decodes images itself).
* `tokenize`: `text` -> `token_ids`.
* `embed_image`: `image_bytes` -> `embedding` [batch, D] and `embed_text`:
  `text` -> `embedding`, the L2-normalised retrieval embeddings (what
  `gemini-tf index` computes; Beam's RunInference embeds galleries with them).

The vocabulary and a `gemini_tf.json` (config, image size, sequence length,
label names, version) go into `assets.extra/`. Writes are atomic (temporary
folder, then rename) and never overwrite an existing version.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile

import keras
import tensorflow as tf

from gemini_tf.bundle import GeminiBundle
from gemini_tf.preprocessing.image import preprocess_image_bytes
from gemini_tf.preprocessing.text import save_vocabulary
from gemini_tf.version import __version__

ASSETS_EXTRA = "assets.extra"


def serving_functions(bundle: GeminiBundle) -> dict:
    """The signature functions of a bundle, as plain Python callables on tensors."""
    model, preprocessor, config = bundle.model, bundle.preprocessor, bundle.config
    height, width = config.image_size

    def outputs(probabilities):
        probability = probabilities[:, 0]
        return {"probability": probability, "label": tf.cast(probability >= 0.5, tf.int32)}

    def predict_tensors(image, token_ids):
        return outputs(model([token_ids, image], training=False))

    def decode_batch(image_bytes):
        return tf.map_fn(
            lambda data: preprocess_image_bytes(data, (height, width)),
            image_bytes,
            fn_output_signature=tf.TensorSpec((height, width, 3), tf.float32),
        )

    def serving_default(image_bytes, text):
        return predict_tensors(decode_batch(image_bytes), preprocessor(text))

    def predict_text(text, image):
        return predict_tensors(image, preprocessor(text))

    def tokenize(text):
        return {"token_ids": preprocessor(text)}

    def embed_image(image_bytes):
        return {"embedding": model.embed_images(decode_batch(image_bytes), training=False)}

    def embed_text(text):
        return {"embedding": model.embed_texts(preprocessor(text), training=False)}

    return {
        "serving_default": serving_default,
        "predict_tensors": predict_tensors,
        "predict_text": predict_text,
        "tokenize": tokenize,
        "embed_image": embed_image,
        "embed_text": embed_text,
    }


def export_saved_model(
    bundle: GeminiBundle, name: str, base_dir: str = "saved_models", version: int | None = None
) -> str:
    """Writes `base_dir/name/version/` (version: next free integer by default); returns it."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"Model name {name!r} must use letters, digits, '_', '-' or '.' only.")
    model_dir = os.path.join(base_dir, name)
    os.makedirs(model_dir, exist_ok=True)
    versions = [int(v) for v in os.listdir(model_dir) if v.isdigit()]
    version = version if version is not None else max(versions, default=0) + 1
    target = os.path.join(model_dir, str(version))
    if os.path.exists(target):
        raise FileExistsError(f"{target} already exists; exports never overwrite a version.")

    config = bundle.config
    height, width = config.image_size
    length = config.sequence_length
    functions = serving_functions(bundle)
    archive = keras.export.ExportArchive()
    archive.track(bundle.model)
    archive.track(bundle.preprocessor)
    archive.add_endpoint(
        "serving_default",
        functions["serving_default"],
        input_signature=[
            tf.TensorSpec([None], tf.string, name="image_bytes"),
            tf.TensorSpec([None], tf.string, name="text"),
        ],
    )
    archive.add_endpoint(
        "predict_tensors",
        functions["predict_tensors"],
        input_signature=[
            tf.TensorSpec([None, height, width, 3], tf.float32, name="image"),
            tf.TensorSpec([None, length], tf.int32, name="token_ids"),
        ],
    )
    archive.add_endpoint(
        "predict_text",
        functions["predict_text"],
        input_signature=[
            tf.TensorSpec([None], tf.string, name="text"),
            tf.TensorSpec([None, height, width, 3], tf.float32, name="image"),
        ],
    )
    for name in ("tokenize", "embed_text"):
        archive.add_endpoint(name, functions[name], input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    archive.add_endpoint(
        "embed_image", functions["embed_image"], input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")]
    )

    temporary = tempfile.mkdtemp(prefix=f".{version}-", dir=model_dir)
    try:
        archive.write_out(temporary, verbose=False)
        extra = os.path.join(temporary, ASSETS_EXTRA)
        os.makedirs(extra, exist_ok=True)
        save_vocabulary(bundle.preprocessor.vocabulary, os.path.join(extra, "vocab.txt"))
        with open(os.path.join(extra, "gemini_tf.json"), "w") as f:
            json.dump(
                {
                    "gemini_tf_version": __version__,
                    "task": bundle.model.task,
                    "image_size": [height, width],
                    "sequence_length": length,
                    "label_names": list(bundle.label_names),
                    "config": config.to_dict(),
                },
                f,
                indent=2,
            )
        os.rename(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    write_models_config(base_dir)
    return target


def write_models_config(base_dir: str = "saved_models") -> str:
    """Writes `base_dir/models.config` (TF Serving model config) listing every exported model.

    Paths are `/models/NAME`, the layout of the tensorflow/serving Docker image
    when `base_dir` is mounted at `/models`.
    """
    names = sorted(
        name
        for name in os.listdir(base_dir)
        if os.path.isdir(os.path.join(base_dir, name))
        and any(v.isdigit() for v in os.listdir(os.path.join(base_dir, name)))
    )
    entries = "".join(
        f'  config {{\n    name: "{name}"\n    base_path: "/models/{name}"\n    model_platform: "tensorflow"\n  }}\n'
        for name in names
    )
    path = os.path.join(base_dir, "models.config")
    with open(path, "w") as f:
        f.write(f"model_config_list {{\n{entries}}}\n")
    return path
