"""`Record`: one (image file, text, label) row, the unit every real-data loader yields.

Manifests, Flickr8k, COCO and NLVR all become lists of `Record`s, which
`validate_records` checks (file present and decodable, text non-empty) with a
`DataReport`, and `gemini_tf.data.pipeline.from_files` turns into tf.data.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from gemini_tf.data.report import DataReport
from gemini_tf.preprocessing.image import decode_image


@dataclasses.dataclass
class Record:
    """image: file path; label: 0/1 or None (matching data); image_id groups rows of one image;
    where: `file:line` of the row, for error messages."""

    image: str
    text: str
    label: int | None = None
    image_id: str = ""
    where: str = ""


def image_problem(path: str, data: bytes | None = None) -> str | None:
    """The `DataReport` reason why `path` cannot be used, or None if it decodes."""
    if data is None:
        if not os.path.isfile(path):
            return "missing_image"
        with open(path, "rb") as f:
            data = f.read()
    if not data:
        return "unreadable_image"
    try:
        decode_image(tf.constant(data))
    except tf.errors.InvalidArgumentError:
        return "unreadable_image"
    return None


def usable(record: Record, report: DataReport, check_images: bool = True, checked: dict | None = None) -> bool:
    """True if the record has text and a readable image; else skips it in `report`.

    `checked` caches image verdicts, so an image shared by several rows is read once.
    """
    if not record.text.strip():
        report.skip(record.where, "empty_text")
        return False
    checked = {} if checked is None else checked
    if record.image not in checked:
        checked[record.image] = (
            image_problem(record.image) if check_images else (None if os.path.isfile(record.image) else "missing_image")
        )
    if checked[record.image]:
        report.skip(record.where, checked[record.image], record.image)
        return False
    return True


def validate_records(
    records: Iterable[Record], report: DataReport, check_images: bool = True, progress: bool = False
) -> list[Record]:
    """Keeps the usable records; every other one is skipped in `report` with its reason."""
    kept, checked = [], {}
    for record in tqdm(records, desc=f"checking {report.source}", disable=not progress):
        report.rows_read += 1
        if usable(record, report, check_images, checked):
            kept.append(record)
    report.used += len(kept)
    return kept


def read_images(paths: list[str], size: tuple[int, int], progress: bool = False) -> np.ndarray:
    """Decodes and resizes image files -> uint8 [N, *size, 3] (an in-memory cache for training)."""
    dataset = (
        tf.data.Dataset.from_tensor_slices(list(paths))
        .map(
            lambda path: tf.cast(
                tf.round(tf.image.resize(decode_image(tf.io.read_file(path)), size, antialias=True)), tf.uint8
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        .batch(256)
    )
    batches = tqdm(dataset, total=-(-len(paths) // 256), desc="decoding images", disable=not progress)
    return np.concatenate([b.numpy() for b in batches]) if paths else np.zeros((0, *size, 3), np.uint8)
