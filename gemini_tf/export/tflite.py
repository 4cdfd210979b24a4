"""TFLite conversion in four quantization variants, and a LiteRT `Predictor`.

Converted from the exported SavedModel with builtin ops only (Flex ops are not in
the TF 2.21 wheels). Three flavours:

* `tensors`: `token_ids` int32 [batch, L] + `image` float32 [batch, H, W, 3] ->
  `probability`. Pure builtins: runs on any LiteRT runtime.
* `text`: `text` string [batch] + `image` -> `probability`. Tokenization runs in
  the model as TF-Text custom ops, so the app must register them
  (`tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS` in Python; the TF-Text
  op resolver on devices).

* `describe` (describe models): `image` float32 [1, H, W, 3] -> `token_ids`
  [1, L], the whole greedy decoding loop (a WHILE of builtins) in the model;
  `Captioner` turns the ids back into words with the vocabulary. No int8
  variant: the loop's inputs are not calibrated.

Image decoding stays in the app in every flavour.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator

import numpy as np
import tensorflow as tf

from gemini_tf.data.labelled import LabelledPairs
from gemini_tf.data.sources import ShapesSource, open_source
from gemini_tf.preprocessing.image import load_images
from gemini_tf.preprocessing.text import TextPreprocessor, load_vocabulary

QUANTIZATIONS = ("none", "dynamic", "float16", "int8")
# Measured by benchmarks/deploy.py (README, "Deployment"); shown whenever int8 is asked for.
INT8_WARNING = (
    "int8: on this model family full-integer TFLite runs about 2x slower than float on CPU and loses "
    "about a point of accuracy (README: Deployment); the dynamic-range variant is as small, faster and "
    "keeps float accuracy."
)
FLAVOURS = {"tensors": "predict_tensors", "text": "predict_text", "describe": "describe_tensors"}
# (flavour, quantization) pairs not written; see `convert`.
UNSUPPORTED = {("text", "int8"), ("describe", "int8")}


def convert(
    saved_model_dir: str,
    quantize: str = "none",
    flavour: str = "tensors",
    representative_data: Iterator[dict] | None = None,
) -> bytes:
    """Converts one signature of an exported SavedModel to a .tflite flatbuffer."""
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"Unknown quantization {quantize!r}; choose one of {list(QUANTIZATIONS)}.")
    if flavour not in FLAVOURS:
        raise ValueError(f"Unknown flavour {flavour!r}; choose one of {list(FLAVOURS)}.")
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=[FLAVOURS[flavour]])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if flavour == "text":
        converter.allow_custom_ops = True
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        if flavour == "describe":
            raise ValueError("int8 is not offered for the captioner; use dynamic or float16.")
        if flavour == "text":
            raise ValueError(
                "int8 needs calibration, and the TFLite calibrator cannot run the TF-Text "
                "custom ops of the `text` flavour; use the `tensors` flavour for int8."
            )
        if representative_data is None:
            raise ValueError("int8 quantization needs representative data from the training set.")
        converter.representative_dataset = lambda: representative_data
    return converter.convert()


def interpreter(path: str, flavour: str = "tensors"):
    """A LiteRT interpreter for a .tflite file (TF-Text ops registered for `text`)."""
    from ai_edge_litert.interpreter import Interpreter, InterpreterWithCustomOps

    if flavour != "text":
        return Interpreter(model_path=path)
    import tensorflow_text

    return InterpreterWithCustomOps(
        model_path=path, custom_op_registerers=tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS
    )


class Predictor:
    """Runs a gemini_tf .tflite file with the package's own preprocessing.

    Reads `vocab.txt` and `gemini_tf.json` from the .tflite file's folder, so a
    Python user gets the SavedModel's answers from the same images and texts.
    """

    def __init__(self, path: str):
        folder = os.path.dirname(os.path.abspath(path))
        with open(os.path.join(folder, "gemini_tf.json")) as f:
            self.meta = json.load(f)
        self.image_size = tuple(self.meta["image_size"])
        self.flavour = "text" if os.path.basename(path).startswith("text") else "tensors"
        self.preprocessor = TextPreprocessor(
            load_vocabulary(os.path.join(folder, "vocab.txt")), self.meta["sequence_length"]
        )
        self._interpreter = interpreter(path, self.flavour)
        self._runner = self._interpreter.get_signature_runner(FLAVOURS[self.flavour])

    def predict(self, images, texts) -> np.ndarray:
        """P(match) per pair; `images` are file paths or uint8 arrays [N, H, W, 3]."""
        texts = [str(t) for t in texts]
        pixels = load_images(images, self.image_size)
        if len(pixels) != len(texts):
            raise ValueError(f"Got {len(pixels)} images but {len(texts)} texts.")
        outputs = []
        for image, text in zip(pixels, texts):  # batch 1: what devices run
            if self.flavour == "text":
                result = self._runner(text=np.array([text.encode("utf-8")]), image=image[None])
            else:
                token_ids = self.preprocessor([text]).numpy()
                result = self._runner(token_ids=token_ids, image=image[None])
            outputs.append(float(np.reshape(result["probability"], -1)[0]))
        return np.asarray(outputs, np.float32)


class Captioner:
    """Runs a `describe_*.tflite` file: images in, captions out (batch 1, as on devices).

    Reads `vocab.txt` and `gemini_tf.json` from the file's folder.
    """

    def __init__(self, path: str):
        folder = os.path.dirname(os.path.abspath(path))
        with open(os.path.join(folder, "gemini_tf.json")) as f:
            self.meta = json.load(f)
        self.image_size = tuple(self.meta["image_size"])
        self.preprocessor = TextPreprocessor(
            load_vocabulary(os.path.join(folder, "vocab.txt")), self.meta["sequence_length"]
        )
        self._runner = interpreter(path).get_signature_runner(FLAVOURS["describe"])

    def token_ids(self, images) -> np.ndarray:
        """[N, L] token ids; `images` are file paths or uint8 arrays [N, H, W, 3]."""
        pixels = load_images(images, self.image_size)
        return np.concatenate([self._runner(image=image[None])["token_ids"] for image in pixels])

    def describe(self, images) -> list[str]:
        """A caption per image."""
        return [text.decode("utf-8") for text in self.preprocessor.detokenize(self.token_ids(images)).numpy()]


def flavours_of(saved_model_dir: str) -> tuple[str, ...]:
    """The TFLite flavours an exported model offers: `describe` for a describe model, else `tensors`
    and `text`."""
    with open(os.path.join(saved_model_dir, "assets.extra", "gemini_tf.json")) as f:
        task = json.load(f)["task"]
    return ("describe",) if task == "describe" else ("tensors", "text")


def export_tflite(
    saved_model_dir: str,
    output_dir: str,
    quantizations: tuple[str, ...] = QUANTIZATIONS,
    flavours: tuple[str, ...] | None = None,
    representative_data: list[dict] | None = None,
) -> list[str]:
    """Writes `{flavour}_{quantization}.tflite` files plus vocab.txt and gemini_tf.json.

    `flavours` default to `flavours_of` the model. int8 is written for the `tensors` flavour only
    (seven files by default for a matcher, three for a captioner).
    """
    os.makedirs(output_dir, exist_ok=True)
    for name in ("vocab.txt", "gemini_tf.json"):
        shutil.copy(os.path.join(saved_model_dir, "assets.extra", name), output_dir)
    paths = []
    for flavour in flavours or flavours_of(saved_model_dir):
        for quantize in quantizations:
            if (flavour, quantize) in UNSUPPORTED:
                continue  # see `convert`
            data = None
            if quantize == "int8" and representative_data is not None:
                data = iter([{"token_ids": d["token_ids"], "image": d["image"]} for d in representative_data])
            path = os.path.join(output_dir, f"{flavour}_{quantize}.tflite")
            with open(path, "wb") as f:
                f.write(convert(saved_model_dir, quantize, flavour, data))
            paths.append(path)
    return paths


def representative_data(bundle, data: str | dict | None = None, count: int = 200, seed: int = 0) -> list[dict]:
    """int8 calibration samples (batch 1), preprocessed exactly as in training.

    Drawn from `data` (a data path) when given, else from the training part of
    the data the bundle was trained on (recorded in the bundle), at the model's
    own image size, so a Flickr8k or NLVR model is calibrated on photos or NLVR
    scenes, not on Shapes.
    """
    spec = data or bundle.data
    if not spec:
        raise ValueError(
            "This bundle does not record its training data; pass the calibration data (--calibration-data PATH)."
        )
    if isinstance(spec, dict) and spec.get("kind") == "shapes":
        spec = {**spec, "scenes": {"train": count}}
    source = open_source(spec)
    part = "train" if "train" in source.parts else source.parts[0]
    if source.holds == "pairs" or isinstance(source, ShapesSource):
        view = source.pairs(part)
        if isinstance(view, LabelledPairs):
            rows = np.random.default_rng(seed).permutation(len(view))[:count]
            view = view.select(np.sort(rows))
    else:
        view = source.captions(part)
        view = view.select_images(np.arange(min(count, view.num_images)))
    dataset = view.dataset(bundle.preprocessor, bundle.config.image_size, 1)
    samples = []
    for element in dataset.take(count):
        token_ids, images = element[0][0], element[0][1]
        samples.append({"token_ids": token_ids.numpy(), "image": images.numpy()})
    return samples
