"""`TeacherCache`: a teacher's outputs for every batch of a distillation run, written once to TFRecord.

On the fly, the frozen teacher runs on every batch of every student's run. A
sweep (λ, temperature, student size) trains several students on the same
batches — the same data, seed, batch size and epochs — so the teacher's part of
every step is the same each time. A `TeacherCache` folder holds, for one such
stream, each batch's `DistillationTrainer.teacher_outputs` (similarity logits,
mined negatives, match logits) in `train.tfrecord` (every epoch of the run) and
`validation.tfrecord`. The first run writes them; later runs read them beside
their batches and the teacher does not run.

What the batches depend on is the cache's key (`cache.json`): the teacher's
weights, the layout, the seed, batch size, epochs and example counts. A folder
written for another key is refused, naming what differs. Each record also keeps
its batch's fingerprint (sum of the token ids and of the pixels), checked as the
batches are read, so a data stream that changed under the same key fails with
an error naming the batch instead of teaching wrong targets.

    cache = TeacherCache("saved_models/shapes_teacher_cache")
    batches = cache.attach("train", make_batches, teacher, "groups", seed=0, key=key, examples=12000)
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from gemini_tf.models.distillation_trainer import teacher_outputs

FORMAT = 1
KEY_FILE = "cache.json"
# Pixel sums of the same batch agree to float64 rounding; a changed image moves them far more.
PIXEL_TOLERANCE = 1e-3


def weights_digest(model: keras.Model) -> str:
    """SHA-1 of a model's weights: the same teacher, whatever folder it was loaded from."""
    digest = hashlib.sha1()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def fingerprint(inputs) -> tuple[tf.Tensor, tf.Tensor]:
    """(sum of the token ids, sum of the pixels) of a batch's inputs (token_ids, images, ...)."""
    token_ids, images = inputs[0], inputs[1]
    return (
        tf.reduce_sum(tf.cast(token_ids, tf.int64)),
        tf.reduce_sum(tf.cast(images, tf.float64)),
    )


class TeacherCache:
    """A folder of teacher outputs, one TFRecord per part ("train", "validation").

    Args:
        folder: the cache folder (created on first use).
        verbose: print what is written or reused.
    """

    def __init__(self, folder: str, verbose: bool = True):
        self.folder = folder
        self.verbose = verbose

    def records(self, part: str) -> str:
        return os.path.join(self.folder, f"{part}.tfrecord")

    def manifest(self) -> dict:
        """`cache.json`: {"key", "parts": {part: {"examples", "batches", "fields", "write_seconds"}}}; {} if none."""
        path = os.path.join(self.folder, KEY_FILE)
        if not os.path.isfile(path):
            return {}
        with open(path) as f:
            return json.load(f)

    def attach(
        self,
        part: str,
        make_batches: Callable[[], tf.data.Dataset],
        teacher: keras.Model,
        layout: str,
        seed: int | None,
        key: dict,
        examples: int,
    ) -> tf.data.Dataset:
        """The part's batches as ({"inputs": x, "teacher": outputs}, *rest), the input a
        `DistillationTrainer` reads without running its teacher.

        Args:
            part: "train" or "validation".
            make_batches: builds the part's batches, in the order training reads them (all epochs
                for "train"). Called for each pass (write, check, train): a shuffled dataset
                reshuffles when iterated again, a fresh one repeats its first order.
            teacher, layout: what runs on them when the part is not in the folder yet.
            seed: seed of the teacher's hard-negative sampler ("captions").
            key: what the batches depend on besides the part (teacher digest, seed, batch size, ...);
                a folder written for another key, or another number of `examples`, raises ValueError.
            examples: the part's number of examples.
        """
        key = {"format": FORMAT, **key}
        manifest = self.manifest()
        if manifest and manifest["key"] != key:
            written = manifest["key"]
            differs = [
                f"{k}: {written.get(k)!r}, not {key.get(k)!r}"
                for k in sorted({*key, *written})
                if key.get(k) != written.get(k)
            ]
            raise ValueError(
                f"--teacher-cache {self.folder} holds the teacher outputs of another run ({'; '.join(differs)}); "
                "pass an empty folder, or delete that one."
            )
        written = manifest.get("parts", {}).get(part)
        if written and written["examples"] != examples:
            raise ValueError(
                f"--teacher-cache {self.folder} holds the teacher outputs of {written['examples']} {part} examples, "
                f"not {examples}; pass an empty folder, or delete that one."
            )
        if not written:
            manifest = self._write(part, make_batches(), teacher, layout, seed, key, manifest, examples)
        elif self.verbose:
            print(f"teacher cache: reading {part} ({manifest['parts'][part]['batches']} batches) from {self.folder}")
        cached = self._read(part, manifest["parts"][part])
        self._check_first(part, self._joined(part, make_batches(), cached))
        return self._joined(part, make_batches(), cached)

    def _write(self, part, batches, teacher, layout, seed, key, manifest, examples) -> dict:
        """Runs the teacher over every batch of `batches` and writes its outputs."""
        os.makedirs(self.folder, exist_ok=True)
        seed_generator = keras.random.SeedGenerator(seed if part == "train" else (seed or 0) + 1)

        @tf.function(reduce_retracing=True)
        def taught(batch):
            inputs = batch[0]
            return teacher_outputs(teacher, layout, inputs, seed_generator), fingerprint(inputs)

        start, count, fields = time.perf_counter(), 0, None
        partial = self.records(part) + ".partial"
        with tf.io.TFRecordWriter(partial) as writer:
            for batch in batches:
                outputs, (tokens, pixels) = taught(batch)
                fields = {name: [value.dtype.name, len(value.shape)] for name, value in outputs.items()}
                feature = {
                    name: _bytes(tf.io.serialize_tensor(value)) for name, value in {**outputs, "pixels": pixels}.items()
                }
                feature["tokens"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(tokens)]))
                writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
                count += 1
        os.replace(partial, self.records(part))
        seconds = time.perf_counter() - start
        written = {"examples": examples, "batches": count, "fields": fields, "write_seconds": round(seconds, 1)}
        manifest = {"key": key, "parts": {**manifest.get("parts", {}), part: written}}
        with open(os.path.join(self.folder, KEY_FILE), "w") as f:  # last: a part is listed only once complete
            json.dump(manifest, f, indent=2)
        if self.verbose:
            print(f"teacher cache: wrote {part}, {count} batches in {seconds:.0f} s, to {self.folder}")
        return manifest

    def _read(self, part: str, written: dict) -> tf.data.Dataset:
        fields = written["fields"]
        spec = {name: tf.io.FixedLenFeature([], tf.string) for name in [*fields, "pixels"]}
        spec["tokens"] = tf.io.FixedLenFeature([], tf.int64)

        def parse(record):
            example = tf.io.parse_single_example(record, spec)
            outputs = {
                name: tf.ensure_shape(tf.io.parse_tensor(example[name], dtype), [None] * rank)
                for name, (dtype, rank) in fields.items()
            }
            return outputs, (example["tokens"], tf.io.parse_tensor(example["pixels"], tf.float64))

        records = tf.data.TFRecordDataset(self.records(part))
        records = records.apply(tf.data.experimental.assert_cardinality(written["batches"]))  # as `fit` expects
        return records.map(parse, num_parallel_calls=tf.data.AUTOTUNE)

    def _joined(self, part: str, batches: tf.data.Dataset, cached: tf.data.Dataset) -> tf.data.Dataset:
        """(batch, record) pairs -> ({"inputs": x, "teacher": outputs}, *rest), once the fingerprints agree."""
        message = (
            f"teacher cache {self.folder}: a {part} batch differs from the one the teacher was run on "
            "(token or pixel sums); the data changed under the same settings: delete the folder."
        )

        def merge(batch, record):
            outputs, (tokens, pixels) = record
            seen_tokens, seen_pixels = fingerprint(batch[0])
            checks = [
                tf.debugging.assert_equal(seen_tokens, tokens, message=message),
                tf.debugging.assert_near(seen_pixels, pixels, atol=PIXEL_TOLERANCE, message=message),
            ]
            with tf.control_dependencies(checks):
                outputs = {name: tf.identity(value) for name, value in outputs.items()}
            return ({"inputs": batch[0], "teacher": outputs}, *batch[1:])

        return tf.data.Dataset.zip(batches, cached).map(merge, num_parallel_calls=tf.data.AUTOTUNE)

    def _check_first(self, part: str, joined: tf.data.Dataset) -> None:
        """The first batch's fingerprint check, run before training: a clear error, not one inside `fit`.
        `joined` is a pass of its own (a shuffled stream reshuffles when iterated again)."""
        try:
            next(iter(joined.take(1)))
        except tf.errors.InvalidArgumentError:
            raise ValueError(
                f"teacher cache {self.folder}: the first {part} batch is not the one the teacher was run on "
                "(token or pixel sums differ); the data changed under the same settings: delete the folder."
            ) from None


def _bytes(value: tf.Tensor) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.numpy()]))
