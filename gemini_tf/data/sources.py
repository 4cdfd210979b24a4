"""Which dataset layout a path holds, and the loader for it.

`gemini-tf train --data PATH` accepts a manifest (.csv/.jsonl), a folder of
TFRecord shards, or a Flickr8k, COCO captions or NLVR folder; `detect` tells
them apart from the files they contain.
"""

from __future__ import annotations

import os
import zlib

import tensorflow as tf

from gemini_tf.data import pipeline, shapes
from gemini_tf.data.captions import CaptionSet
from gemini_tf.data.coco import is_coco, load_coco
from gemini_tf.data.flickr8k import is_flickr8k, load_flickr8k
from gemini_tf.data.manifest import is_manifest, read_manifest
from gemini_tf.data.nlvr import is_nlvr, load_nlvr, split_by_directory
from gemini_tf.data.report import DataError
from gemini_tf.data.tfrecords import from_tfrecords, is_tfrecord_dir, read_tfrecords
from gemini_tf.preprocessing.text import TextPreprocessor

CAPTION_KINDS = ("flickr8k", "coco")
LABELLED_KINDS = ("nlvr", "tfrecords")


def detect(path: str) -> str:
    """"manifest", "tfrecords", "flickr8k", "coco" or "nlvr"; a clear error otherwise."""
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"No such data path: {path} (--data takes 'shapes', a manifest, or a dataset folder)"
        )
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


def labelled_splits(path: str, strict: bool = False, allow_outside_root: bool = False,
                    progress: bool = False):
    """(train, validation) of a labelled source: lists of `Record`s, or ("tfrecords", path, part).

    NLVR trains on `dev` minus numbered directory 5 (validation); manifests and
    TFRecords hold out 10 % by a hash of the image (TFRecords: example id).
    """
    kind = detect(path)
    if kind == "nlvr":
        records, report = load_nlvr(path, "dev", strict, progress)
    elif kind == "manifest":
        records, report = read_manifest(path, strict, allow_outside_root, require_labels=True)
    elif kind == "tfrecords":
        return ("tfrecords", path, "train"), ("tfrecords", path, "validation")
    else:
        raise ValueError(f"{path} holds {kind} captions; task 'classify' needs labelled data "
                         "(NLVR, a manifest with a label column, or TFRecords).")
    if report.num_skipped:
        print(report.summary())
    if kind == "nlvr":
        return split_by_directory(records)
    validation = [r for r in records if zlib.crc32(r.image_id.encode()) % 10 == 0]
    return [r for r in records if zlib.crc32(r.image_id.encode()) % 10 != 0], validation


def labelled_texts(split) -> list[str]:
    """The texts of a split (for learning a vocabulary)."""
    if isinstance(split, shapes.PairSet):
        return list(split.texts)
    if isinstance(split, tuple):
        return [t.decode() for t in read_tfrecords(split[1]).map(lambda x: x["text"]).as_numpy_iterator()]
    return [r.text for r in split]


def labelled_dataset(split, preprocessor: TextPreprocessor, image_size: tuple[int, int], batch_size: int,
                     shuffle: bool = False, seed: int = 0) -> tf.data.Dataset:
    """((token_ids, images), labels) batches of a split: `Record`s, TFRecords from
    `labelled_splits`, or a Shapes `PairSet` of statements."""
    if isinstance(split, shapes.PairSet):
        return pipeline.from_arrays(split.images, split.texts, split.labels, preprocessor, image_size,
                                    batch_size, shuffle, seed)
    if isinstance(split, tuple):
        return from_tfrecords(split[1], preprocessor, image_size, batch_size, shuffle, seed, part=split[2])
    return pipeline.from_records(split, preprocessor, image_size, batch_size, shuffle, seed)
