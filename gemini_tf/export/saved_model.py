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

A describe bundle (`--task describe`) has other signatures:

* `serving_default` and `describe`: `image_bytes` -> `caption` (string) and
  `token_ids` [batch, L], greedy; `describe_beam`: the same with beam search
  (4 beams). The decoding loop (keras-hub's samplers) runs inside the graph.
* `describe_tensors`: `image` float32 [batch, H, W, 3] -> `token_ids` (greedy,
  run as a one-beam search), the source of the TFLite captioner.

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
from gemini_tf.models.captioner import make_sampler
from gemini_tf.preprocessing.image import preprocess_image_bytes
from gemini_tf.preprocessing.text import save_vocabulary
from gemini_tf.version import __version__

ASSETS_EXTRA = "assets.extra"


def decode_batch(image_bytes, image_size: tuple[int, int]):
    """Encoded images [batch] -> float32 [batch, H, W, 3], each through `preprocess_image_bytes`."""
    return tf.map_fn(
        lambda data: preprocess_image_bytes(data, image_size),
        image_bytes,
        fn_output_signature=tf.TensorSpec((*image_size, 3), tf.float32),
    )


def serving_functions(bundle: GeminiBundle) -> dict:
    """The signature functions of a matching or classification bundle, as plain Python callables on tensors."""
    model, preprocessor, config = bundle.model, bundle.preprocessor, bundle.config

    def outputs(probabilities):
        probability = probabilities[:, 0]
        return {"probability": probability, "label": tf.cast(probability >= 0.5, tf.int32)}

    def predict_tensors(image, token_ids):
        return outputs(model([token_ids, image], training=False))

    def serving_default(image_bytes, text):
        return predict_tensors(decode_batch(image_bytes, config.image_size), preprocessor(text))

    def predict_text(text, image):
        return predict_tensors(image, preprocessor(text))

    def tokenize(text):
        return {"token_ids": preprocessor(text)}

    def embed_image(image_bytes):
        return {"embedding": model.embed_images(decode_batch(image_bytes, config.image_size), training=False)}

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


def describe_functions(bundle: GeminiBundle, num_beams: int = 4) -> dict:
    """The signature functions of a describe bundle (see the module docstring)."""
    model, preprocessor = bundle.model, bundle.preprocessor
    greedy, beam = make_sampler("greedy"), make_sampler("beam", num_beams)

    def captions(image_bytes, sampler):
        token_ids = model.generate(decode_batch(image_bytes, bundle.config.image_size), sampler)
        return {"caption": preprocessor.detokenize(token_ids), "token_ids": token_ids}

    return {
        "describe": lambda image_bytes: captions(image_bytes, greedy),
        "describe_beam": lambda image_bytes: captions(image_bytes, beam),
        # Greedy as a one-beam search: Keras lowers GreedySampler's argmax to a BitwiseAnd that TFLite
        # has no builtin for, while top_k converts; the captions are the same.
        "describe_tensors": lambda image: {"token_ids": model.generate(image, make_sampler("beam", 1))},
    }


def _add_matching_endpoints(archive: keras.export.ExportArchive, bundle: GeminiBundle) -> None:
    height, width = bundle.config.image_size
    length = bundle.config.sequence_length
    functions = serving_functions(bundle)
    image_bytes = tf.TensorSpec([None], tf.string, name="image_bytes")
    text = tf.TensorSpec([None], tf.string, name="text")
    image = tf.TensorSpec([None, height, width, 3], tf.float32, name="image")
    archive.add_endpoint("serving_default", functions["serving_default"], input_signature=[image_bytes, text])
    archive.add_endpoint(
        "predict_tensors",
        functions["predict_tensors"],
        input_signature=[image, tf.TensorSpec([None, length], tf.int32, name="token_ids")],
    )
    archive.add_endpoint("predict_text", functions["predict_text"], input_signature=[text, image])
    for name in ("tokenize", "embed_text"):
        archive.add_endpoint(name, functions[name], input_signature=[text])
    archive.add_endpoint("embed_image", functions["embed_image"], input_signature=[image_bytes])


def _add_describe_endpoints(archive: keras.export.ExportArchive, bundle: GeminiBundle) -> None:
    functions = describe_functions(bundle)
    image_bytes = [tf.TensorSpec([None], tf.string, name="image_bytes")]
    for name in ("serving_default", "describe"):
        archive.add_endpoint(name, functions["describe"], input_signature=image_bytes)
    archive.add_endpoint("describe_beam", functions["describe_beam"], input_signature=image_bytes)
    image = tf.TensorSpec([None, *bundle.config.image_size, 3], tf.float32, name="image")
    archive.add_endpoint("describe_tensors", functions["describe_tensors"], input_signature=[image])


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
    archive = keras.export.ExportArchive()
    archive.track(bundle.model)
    archive.track(bundle.preprocessor)
    if bundle.model.task == "describe":
        _add_describe_endpoints(archive, bundle)
    else:
        _add_matching_endpoints(archive, bundle)

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
                    "image_size": list(config.image_size),
                    "sequence_length": config.sequence_length,
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
