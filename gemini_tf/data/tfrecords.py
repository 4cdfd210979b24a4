"""Sharded TFRecords of `tf.train.Example` (image bytes, text, label, image key, row): data at scale.

`convert_manifest` streams a manifest row by row into N shards (memory stays
bounded however long the manifest is), with the same bad-row accounting as
every loader; the report is also written to `report.json` beside the shards.
`read_tfrecords` streams the shards back with interleave + parallel parsing,
and `TFRecordPairs` feeds one part of them (split by image key with
`data.splits`, exactly as the manifest they came from) through the single
preprocessing path.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import json
import os

import tensorflow as tf
from tqdm.auto import tqdm

from gemini_tf.data.manifest import iter_manifest
from gemini_tf.data.records import Record, image_problem
from gemini_tf.data.report import DataError, DataReport
from gemini_tf.data.splits import PARTS, part_index
from gemini_tf.preprocessing.image import preprocess_image_bytes
from gemini_tf.preprocessing.text import TextPreprocessor

AUTOTUNE = tf.data.AUTOTUNE
NO_LABEL = -1
FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "text": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64, default_value=NO_LABEL),
    "image_key": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "id": tf.io.FixedLenFeature([], tf.string),
}


def make_example(image: bytes, text: str, label: int | None, image_key: str, row: str) -> tf.train.Example:
    """One row: encoded image file, text, label (-1 = none), image key (the split rule's input), origin."""

    def strings(value: bytes) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    feature = {
        "image": strings(image),
        "text": strings(text.encode()),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[NO_LABEL if label is None else label])),
        "image_key": strings(image_key.encode()),
        "id": strings(row.encode()),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature))


def shard_paths(directory: str, shards: int) -> list[str]:
    return [os.path.join(directory, f"data-{i:05d}-of-{shards:05d}.tfrecord") for i in range(shards)]


def prepare_output_dir(out_dir: str, shards: int) -> None:
    """Creates `out_dir`; refuses one that already holds shards (never mixes two conversions)."""
    if shards < 1:
        raise ValueError(f"shards must be at least 1, got {shards}.")
    os.makedirs(out_dir, exist_ok=True)
    if glob.glob(os.path.join(out_dir, "*.tfrecord")):
        raise FileExistsError(f"{out_dir} already holds .tfrecord files; choose an empty folder.")


def serialized_example(record: Record, data: bytes) -> tuple[bytes | None, str | None]:
    """A manifest record and its image file's bytes -> (serialized Example, None), or (None, skip reason).

    Images are validated here, on the bytes that get written; both converters
    (this module's and `gemini_tf.beam.convert`) call it for every row.
    """
    problem = image_problem(record.image, data)
    if problem:
        return None, problem
    return make_example(data, record.text, record.label, record.image_id, record.where).SerializeToString(), None


def write_report(out_dir: str, report: DataReport) -> None:
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(report.to_dict(), f, indent=2)


def convert_manifest(
    manifest: str,
    out_dir: str,
    shards: int = 8,
    strict: bool = False,
    allow_outside_root: bool = False,
    progress: bool = True,
) -> tuple[list[str], DataReport]:
    """Manifest -> `out_dir/data-XXXXX-of-NNNNN.tfrecord` (round-robin) + `report.json`."""
    prepare_output_dir(out_dir, shards)
    report = DataReport(manifest, strict=strict)
    paths = shard_paths(out_dir, shards)
    writers = [tf.io.TFRecordWriter(p) for p in paths]
    try:
        rows = iter_manifest(manifest, report, allow_outside_root, check_images=False)
        for count, record in enumerate(tqdm(rows, desc="converting", unit=" rows", disable=not progress)):
            with open(record.image, "rb") as f:
                example, problem = serialized_example(record, f.read())
            if problem:
                report.used -= 1
                report.skip(record.where, problem, record.image)
                continue
            writers[count % shards].write(example)
    finally:
        for writer in writers:
            writer.close()
    write_report(out_dir, report)
    return paths, report


def is_tfrecord_dir(path: str) -> bool:
    return os.path.isdir(path) and bool(glob.glob(os.path.join(path, "*.tfrecord")))


def read_tfrecords(path: str, shuffle: bool = False, seed: int = 0) -> tf.data.Dataset:
    """Streams parsed examples {image, text, label, image_key, id} from a folder of shards."""
    files = sorted(glob.glob(os.path.join(path, "*.tfrecord")))
    if not files:
        raise DataError(f"No .tfrecord files in {path}; write them with `gemini-tf data convert`.")
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed)
    dataset = dataset.interleave(
        tf.data.TFRecordDataset, cycle_length=min(len(files), 8), num_parallel_calls=AUTOTUNE, deterministic=not shuffle
    )
    return dataset.map(lambda x: tf.io.parse_single_example(x, FEATURES), num_parallel_calls=AUTOTUNE)


def part_of_example(example: dict) -> tf.Tensor:
    """`data.splits.part_index` of the example's image key (shards without keys: of the image bytes)."""
    key = example["image_key"]
    return part_index(tf.where(tf.strings.length(key) > 0, key, example["image"]))


@dataclasses.dataclass
class TFRecordPairs:
    """One part ("train", "validation", "test" or "all") of a folder of shards, streamed."""

    path: str
    part: str = "all"

    def examples(self, shuffle: bool = False, seed: int = 0) -> tf.data.Dataset:
        dataset = read_tfrecords(self.path, shuffle, seed)
        if self.part == "all":
            return dataset
        index = PARTS.index(self.part)
        return dataset.filter(lambda x: tf.equal(part_of_example(x), index))

    @functools.cached_property
    def texts(self) -> list[str]:
        """Every text of the part (one streaming pass), for the vocabulary and counts."""
        texts = self.examples().map(lambda x: x["text"], num_parallel_calls=AUTOTUNE)
        return [t.decode() for t in texts.as_numpy_iterator()]

    def __len__(self) -> int:
        return len(self.texts)

    def first(self, count: int | None) -> TFRecordPairs:
        if count is not None:
            raise ValueError(
                "Streamed TFRecord shards cannot be cut to their first examples; convert a smaller manifest instead."
            )
        return self

    def dataset(
        self,
        preprocessor: TextPreprocessor,
        image_size: tuple[int, int],
        batch_size: int = 64,
        shuffle: bool = False,
        seed: int = 0,
        shuffle_buffer: int = 10_000,
    ) -> tf.data.Dataset:
        """((token_ids, images), labels) batches, decoded in parallel, never all in memory.

        Examples converted without a label fail with an error saying so.
        """
        dataset = self.examples(shuffle, seed)
        if shuffle:
            dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        path = self.path

        def preprocess(x):
            label = tf.debugging.assert_non_negative(
                x["label"], message=f"{path}: an example has no label (its manifest row had none)"
            )
            with tf.control_dependencies([label]):
                return (x["text"], preprocess_image_bytes(x["image"], image_size)), tf.identity(x["label"])

        dataset = dataset.map(preprocess, num_parallel_calls=AUTOTUNE)
        return (
            dataset.batch(batch_size)
            .map(lambda inputs, label: ((preprocessor(inputs[0]), inputs[1]), label), num_parallel_calls=AUTOTUNE)
            .prefetch(AUTOTUNE)
        )
