"""Flickr8k in its Kaggle layout: `captions.csv` (image,caption), `images/`, `splits/*.txt`."""

from __future__ import annotations

import csv
import os

from gemini_tf.data.captions import CaptionSet
from gemini_tf.data.paths import data_dir
from gemini_tf.data.records import Record, validate_records
from gemini_tf.data.report import DataError, DataReport


def is_flickr8k(path: str) -> bool:
    return all(os.path.exists(os.path.join(path, p)) for p in ("captions.csv", "images", "splits"))


def load_flickr8k(
    path: str | None = None, split: str = "train", strict: bool = False, progress: bool = False
) -> CaptionSet:
    """Captions of one split (`splits/<split>.txt` lists its image files).

    Missing or unreadable images and empty captions are skipped and counted in
    the returned set's `report` (or raise with `strict=True`).
    """
    path = data_dir("flickr8k", path)
    split_file = os.path.join(path, "splits", f"{split}.txt")
    if not os.path.isfile(split_file):
        available = sorted(f[:-4] for f in os.listdir(os.path.join(path, "splits")) if f.endswith(".txt"))
        raise DataError(f"Flickr8k has no split {split!r} ({split_file}); available: {available}.")
    with open(split_file) as f:
        wanted = {line.strip() for line in f if line.strip()}
    captions_file = os.path.join(path, "captions.csv")
    records = []
    with open(captions_file, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"image", "caption"} <= set(reader.fieldnames):
            raise DataError(f"{captions_file}: expected columns image,caption; got {reader.fieldnames}.")
        for line, row in enumerate(reader, start=2):
            if row["image"] in wanted:
                records.append(
                    Record(
                        os.path.join(path, "images", row["image"]),
                        row["caption"] or "",
                        image_id=row["image"],
                        where=f"{captions_file}:{line}",
                    )
                )
    report = DataReport(f"flickr8k/{split}", strict=strict)
    return CaptionSet.from_records(validate_records(records, report, check_images=False, progress=progress), report)
