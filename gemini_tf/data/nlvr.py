"""NLVR v1: a human-written sentence, six 400x100 renderings of one scene, true/false.

Layout: `<split>/<split>.json` (JSON lines: sentence, label, identifier,
directory) and `<split>/images/<directory>/<split>-<identifier>-<k>.png`,
k = 0..5. One `Record` per rendering; `image_id` is the sentence identifier,
so the six renderings of a sentence can be kept together and voted on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from gemini_tf.data.manifest import parse_label
from gemini_tf.data.paths import data_dir
from gemini_tf.data.records import Record, validate_records
from gemini_tf.data.report import DataError, DataReport

RENDERINGS = 6


def is_nlvr(path: str) -> bool:
    return any(os.path.isfile(os.path.join(path, s, f"{s}.json")) for s in ("dev", "test", "train"))


def load_nlvr(
    path: str | None = None, split: str = "dev", strict: bool = False, progress: bool = False
) -> tuple[list[Record], DataReport]:
    """The records of one split (six per sentence) and the report of skipped rows."""
    path = data_dir("nlvr", path)
    sentences_file = os.path.join(path, split, f"{split}.json")
    if not os.path.isfile(sentences_file):
        raise DataError(f"NLVR has no split {split!r}: {sentences_file} not found.")
    report = DataReport(f"nlvr/{split}", strict=strict)
    records = []
    with open(sentences_file) as f:
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                identifier, directory = row["identifier"], str(row["directory"])
            except (json.JSONDecodeError, KeyError) as error:
                raise DataError(f"{sentences_file}:{line_number}: not an NLVR row ({error}).") from error
            label = parse_label(row.get("label"))
            where = f"{sentences_file}:{line_number}"
            if label is None:
                report.rows_read += RENDERINGS
                for _ in range(RENDERINGS):
                    report.skip(where, "bad_label", repr(row.get("label")))
                continue
            folder = os.path.join(path, split, "images", directory)
            records += [
                Record(
                    os.path.join(folder, f"{split}-{identifier}-{k}.png"),
                    row.get("sentence") or "",
                    label,
                    image_id=identifier,
                    where=where,
                )
                for k in range(RENDERINGS)
            ]
    return validate_records(records, report, check_images=False, progress=progress), report


def directory_of(record: Record) -> str:
    return os.path.basename(os.path.dirname(record.image))


def split_by_directory(
    records: list[Record], validation_directories: Sequence[str] = ("5",)
) -> tuple[list[Record], list[Record]]:
    """(train, validation) by numbered directory: a sentence's six images never straddle."""
    held_out = set(map(str, validation_directories))
    train = [r for r in records if directory_of(r) not in held_out]
    validation = [r for r in records if directory_of(r) in held_out]
    if not train or not validation:
        raise DataError(f"Holding out directories {sorted(held_out)} leaves an empty split.")
    return train, validation
