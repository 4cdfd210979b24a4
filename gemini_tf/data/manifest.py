"""Manifests: a CSV or JSON Lines file listing `image`, `text` and (optionally) `label`.

`image` is a path relative to the manifest's folder, or absolute. Labels may be
0/1, true/false or yes/no (any case). Rows are read one at a time, so even a
huge manifest is streamed. Bad rows are skipped and counted in a `DataReport`
(or raise, with `strict=True`); a relative path that climbs out of the
manifest's folder with `..` is refused unless `allow_outside_root=True`.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Iterator

from gemini_tf.data.labelled import LabelledPairs
from gemini_tf.data.records import Record, usable
from gemini_tf.data.report import DataError, DataReport

logger = logging.getLogger("gemini_tf")

LABEL_VALUES = {"0": 0, "1": 1, "false": 0, "true": 1, "no": 0, "yes": 1}
SUFFIXES = (".csv", ".jsonl", ".json")


def is_manifest(path: str) -> bool:
    return os.path.isfile(path) and path.lower().endswith(SUFFIXES)


def parse_label(value) -> int | None:
    """0/1, true/false, yes/no (any case, or a bool/int) -> 0 or 1; anything else -> None."""
    if isinstance(value, bool):
        return int(value)
    return LABEL_VALUES.get(str(value).strip().lower())


def manifest_has_labels(path: str) -> bool:
    """Whether the manifest has labels: a `label` CSV column, or a "label" key in the first JSON row."""
    for _, row in _rows(path):
        return "label" in row
    return False


def image_key(image: str, root: str) -> str:
    """The split rule's key of an image: its path relative to `root` (absolute if outside it)."""
    relative = os.path.relpath(image, root)
    return image if relative.startswith("..") else relative.replace(os.sep, "/")


def _rows(path: str) -> Iterator[tuple[int, dict]]:
    """(line number, row dict) for each data row of a CSV or JSON Lines file."""
    with open(path, newline="", encoding="utf-8") as f:
        if path.lower().endswith(".csv"):
            reader = csv.DictReader(f)
            if reader.fieldnames is None or not {"image", "text"} <= set(reader.fieldnames):
                raise DataError(f"{path}: the header must name columns image,text[,label]; got {reader.fieldnames}.")
            for row in reader:
                yield reader.line_num, row
            return
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}:{line_number}: not valid JSON ({error.msg}).") from error
            if not isinstance(row, dict) or "image" not in row or "text" not in row:
                raise DataError(
                    f"{path}:{line_number}: each line must be an object with "
                    '"image" and "text" (and optionally "label").'
                )
            yield line_number, row


def iter_manifest(
    path: str,
    report: DataReport,
    allow_outside_root: bool = False,
    check_images: bool = True,
    require_labels: bool = False,
) -> Iterator[Record]:
    """Streams the usable records of a manifest, counting every row in `report`.

    With `require_labels` (classification), a row without a label is a bad label.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Manifest not found: {path}")
    if not path.lower().endswith(SUFFIXES):
        raise DataError(f"{path}: a manifest must be a .csv or .jsonl file.")
    root = os.path.dirname(os.path.abspath(path))
    checked: dict = {}
    for line, row in _rows(path):
        report.rows_read += 1
        where = f"{path}:{line}"
        image = str(row.get("image") or "")
        full = image if os.path.isabs(image) else os.path.normpath(os.path.join(root, image))
        if (
            not os.path.isabs(image)
            and not allow_outside_root
            and os.path.commonpath([root, os.path.abspath(full)]) != root
        ):
            report.skip(where, "outside_root", f"{image}; pass --allow-outside-root to permit it")
            continue
        label = None
        if require_labels and row.get("label") in (None, ""):
            report.skip(where, "bad_label", "missing")
            continue
        if row.get("label") not in (None, ""):
            label = parse_label(row["label"])
            if label is None:
                report.skip(where, "bad_label", repr(row["label"]))
                continue
        record = Record(full, str(row.get("text") or ""), label, image_id=image_key(full, root), where=where)
        if usable(record, report, check_images, checked):
            report.used += 1
            yield record


def read_manifest(
    path: str,
    strict: bool = False,
    allow_outside_root: bool = False,
    check_images: bool = True,
    require_labels: bool = False,
) -> tuple[list[Record], DataReport]:
    """All usable records of a manifest, and the report of what was skipped."""
    report = DataReport(path, strict=strict)
    records = list(iter_manifest(path, report, allow_outside_root, check_images, require_labels))
    return records, report


def from_manifest(
    path: str,
    preprocessor,
    image_size: tuple[int, int],
    batch_size: int = 64,
    shuffle: bool = False,
    seed: int = 0,
    strict: bool = False,
    allow_outside_root: bool = False,
):
    """Every row of a labelled manifest -> (((token_ids, images), labels) batches, `DataReport`).

    Rows are checked up front (files present and decodable, text, label), then
    images are read and decoded in parallel, through the same preprocessing as
    every other source. Skipped rows are logged (warning) and in the report.
    For train / validation / test parts use `open_source(path).pairs(part)`.
    """
    records, report = read_manifest(path, strict, allow_outside_root, require_labels=True)
    if report.num_skipped:
        logger.warning(report.summary())
    if not records:
        raise DataError(f"{path}: no usable rows.\n{report.summary()}")
    pairs = LabelledPairs([r.image for r in records], [r.text for r in records], [r.label for r in records])
    return pairs.dataset(preprocessor, image_size, batch_size, shuffle, seed), report
