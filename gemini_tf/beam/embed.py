"""Gallery embedding with Beam RunInference over an exported SavedModel (`gemini-tf index --engine beam`).

Workers read each image file (or take each text), batch them, and call the
SavedModel's `embed_image` / `embed_text` signature (raw bytes / raw text in,
L2-normalised embedding out: the same preprocessing and weights as
`gemini_tf.retrieval.build_index`) through Beam's TensorFlow model handler.
Embeddings are written as TFRecords of (row, embedding) and gathered by the
launcher into the usual `Index`, rows in the order of `items`.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import tempfile
from collections.abc import Sequence

import apache_beam as beam
import numpy as np
import tensorflow as tf
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference
from apache_beam.ml.inference.tensorflow_inference import TFModelHandlerTensor

from gemini_tf.beam.options import pipeline_options
from gemini_tf.retrieval import Index, check_gallery

SIGNATURES = {"image": ("embed_image", "image_bytes"), "text": ("embed_text", "text")}


def call_signature(model, batch: Sequence, inference_args: dict, model_id: str | None, *, kind: str):
    """The handler's inference function: one batch of raw bytes / texts -> a `PredictionResult` per item."""
    signature, input_name = SIGNATURES[kind]
    embeddings = model.signatures[signature](**{input_name: tf.constant(list(batch))})["embedding"].numpy()
    return [PredictionResult(item, embedding, model_id) for item, embedding in zip(batch, embeddings)]


class SavedModelSignatureHandler(TFModelHandlerTensor):
    """Beam's TF model handler, loading the SavedModel with `tf.saved_model.load`.

    The stock handler loads with `tf.keras.models.load_model`, which Keras 3
    cannot do for a SavedModel; everything else (batching, model sharing
    across threads, metrics) is Beam's.
    """

    def load_model(self):
        return tf.saved_model.load(self._model_uri)


def read_file(keyed_path: tuple[int, str]) -> tuple[int, bytes]:
    row, path = keyed_path
    with FileSystems.open(path) as f:
        return row, f.read()


def to_example(keyed: tuple[int, PredictionResult]) -> bytes:
    row, result = keyed
    feature = {
        "row": tf.train.Feature(int64_list=tf.train.Int64List(value=[row])),
        "embedding": tf.train.Feature(float_list=tf.train.FloatList(value=np.asarray(result.inference).tolist())),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def build_index_beam(
    model: str,
    items: Sequence[str],
    kind: str,
    runner: str = "DirectRunner",
    beam_options: dict[str, str] | None = None,
    batch_size: int = 64,
    search_mode: str = "auto",
) -> Index:
    """Embeds image files (kind="image") or texts (kind="text") with an exported SavedModel on Beam.

    Args:
        model: a SavedModel version folder written by `gemini-tf export`, or a
            bundle folder (`gemini-tf train`), exported to a temporary SavedModel first.
        items: image file paths or texts; the index keeps their order.
        kind: "image" or "text".
        runner, beam_options: see `gemini_tf.beam.options.pipeline_options`.
        batch_size: the most items per signature call.
        search_mode: the index's search, see `gemini_tf.retrieval.Index`.
    """
    check_gallery(items, kind, search_mode)
    if kind == "image":
        missing = [path for path in items if not os.path.isfile(path)]
        if missing:
            raise FileNotFoundError(f"{len(missing)} image files not found, e.g. {missing[0]}")
    scratch = tempfile.mkdtemp(prefix="gemini_tf_index_")
    try:
        saved_model_dir = _saved_model(model, scratch)
        rows, embeddings = _embed(saved_model_dir, items, kind, runner, beam_options, batch_size, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if sorted(rows.tolist()) != list(range(len(items))):
        raise RuntimeError(f"The pipeline embedded {len(rows)} of {len(items)} {kind}s; the index is incomplete.")
    ordered = np.zeros_like(embeddings)
    ordered[rows] = embeddings
    return Index(ordered, [str(i) for i in items], kind, search_mode)


def _saved_model(model: str, scratch: str) -> str:
    """`model` if it is a SavedModel folder, else the bundle `model` exported under `scratch`."""
    if os.path.isfile(os.path.join(model, "saved_model.pb")):
        return model
    from gemini_tf.bundle import load
    from gemini_tf.export.saved_model import export_saved_model

    return export_saved_model(load(model), "gallery", scratch)


def _embed(
    saved_model_dir: str,
    items: Sequence[str],
    kind: str,
    runner: str,
    beam_options: dict[str, str] | None,
    batch_size: int,
    scratch: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Runs the pipeline; (rows [N], embeddings [N, D]) in the order the workers wrote them."""
    handler = KeyedModelHandler(
        SavedModelSignatureHandler(
            saved_model_dir,
            inference_fn=functools.partial(call_signature, kind=kind),
            min_batch_size=1,
            max_batch_size=batch_size,
        )
    )
    with beam.Pipeline(options=pipeline_options(runner, beam_options)) as pipeline:
        keyed = pipeline | "Items" >> beam.Create(list(enumerate(str(i) for i in items)), reshuffle=True)
        if kind == "image":
            keyed = keyed | "ReadFiles" >> beam.Map(read_file)
        _ = (
            keyed
            | "Embed" >> RunInference(handler)
            | "ToExample" >> beam.Map(to_example)
            | "Write" >> beam.io.WriteToTFRecord(os.path.join(scratch, "embeddings"))
        )
    records = tf.data.TFRecordDataset(sorted(glob.glob(os.path.join(scratch, "embeddings*"))))
    parsed = [tf.train.Example.FromString(raw).features.feature for raw in records.as_numpy_iterator()]
    rows = np.array([example["row"].int64_list.value[0] for example in parsed], np.int64)
    return rows, np.array([example["embedding"].float_list.value for example in parsed], np.float32)
