"""Which dataset layout a path holds, and the loader for it.

`gemini-tf train --data PATH` accepts a manifest (.csv/.jsonl), a folder of
TFRecord shards, or a Flickr8k, COCO captions or NLVR folder; `detect` tells
them apart from the files they contain.
"""

from __future__ import annotations

import os

from gemini_tf.data.captions import CaptionSet
from gemini_tf.data.coco import is_coco, load_coco
from gemini_tf.data.flickr8k import is_flickr8k, load_flickr8k
from gemini_tf.data.manifest import is_manifest, read_manifest
from gemini_tf.data.nlvr import is_nlvr
from gemini_tf.data.report import DataError
from gemini_tf.data.tfrecords import is_tfrecord_dir

CAPTION_KINDS = ("flickr8k", "coco")
LABELLED_KINDS = ("nlvr", "tfrecords")


def detect(path: str) -> str:
    """"manifest", "tfrecords", "flickr8k", "coco" or "nlvr"; a clear error otherwise."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such data path: {path}")
    for kind, test in (("manifest", is_manifest), ("tfrecords", is_tfrecord_dir),
                       ("flickr8k", is_flickr8k), ("coco", is_coco), ("nlvr", is_nlvr)):
        if test(path):
            return kind
    raise DataError(
        f"{path}: not a known data layout. Expected a manifest (.csv or .jsonl with image,text[,label]), "
        "a folder of .tfrecord shards, or a Flickr8k (captions.csv + images/ + splits/), "
        "COCO (annotations/captions_*.json) or NLVR (dev/dev.json + dev/images/) folder."
    )


def load_captions(path: str, split: str = "train", strict: bool = False, progress: bool = False,
                  allow_outside_root: bool = False) -> CaptionSet:
    """A Flickr8k or COCO folder, or a manifest of (image, caption) rows -> `CaptionSet`.

    `split` picks Flickr8k's splits/<split>.txt or COCO's captions_<split>.json
    ("train" means train2017 for COCO); a manifest has no splits.
    """
    kind = detect(path)
    if kind == "flickr8k":
        return load_flickr8k(path, split, strict, progress)
    if kind == "coco":
        return load_coco(path, {"train": "train2017", "validation": "val2017"}.get(split, split), strict, progress)
    if kind == "manifest":
        records, report = read_manifest(path, strict, allow_outside_root)
        return CaptionSet.from_records(records, report)
    raise DataError(f"{path} holds {kind} data; caption training needs Flickr8k, COCO or a manifest.")
