"""COCO captions layout: `annotations/captions_<split>.json` + `<split>/` image folder."""

from __future__ import annotations

import json
import os

from gemini_tf.data.captions import CaptionSet
from gemini_tf.data.paths import data_dir
from gemini_tf.data.records import Record, validate_records
from gemini_tf.data.report import DataError, DataReport


def is_coco(path: str) -> bool:
    folder = os.path.join(path, "annotations")
    return os.path.isdir(folder) and any(f.startswith("captions_") for f in os.listdir(folder))


def load_coco(
    path: str | None = None, split: str = "val2017", strict: bool = False, progress: bool = False
) -> CaptionSet:
    """All captions of `annotations/captions_<split>.json`, images from `<split>/`."""
    path = data_dir("coco_mini", path)
    annotations_file = os.path.join(path, "annotations", f"captions_{split}.json")
    if not os.path.isfile(annotations_file):
        raise DataError(f"No COCO captions file for split {split!r}: {annotations_file}")
    with open(annotations_file) as f:
        data = json.load(f)
    try:
        files = {image["id"]: image["file_name"] for image in data["images"]}
        records = [
            Record(
                os.path.join(path, split, files[a["image_id"]]),
                a["caption"] or "",
                image_id=str(a["image_id"]),
                where=f"{annotations_file}:annotation {a['id']}",
            )
            for a in data["annotations"]
        ]
    except KeyError as error:
        raise DataError(f"{annotations_file}: not the COCO captions format (missing {error}).") from error
    records.sort(key=lambda r: (r.image, r.where))
    report = DataReport(f"coco/{split}", strict=strict)
    return CaptionSet.from_records(validate_records(records, report, check_images=False, progress=progress), report)
