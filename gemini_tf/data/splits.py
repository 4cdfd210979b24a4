"""The one split rule: which part (train / validation / test) an image belongs to.

Every source without official splits (manifests, TFRecord shards, generated
Shapes scenes) sends each image to a part by a fingerprint of its *image key*
— a path relative to the data's root, or a scene's content — so all rows of one
image land in the same part, a manifest and the shards converted from it split
identically, and the rule runs the same in Python and inside a tf.data graph.
Sources with official splits (Flickr8k, COCO, NLVR) use those instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

PARTS = ("train", "validation", "test")
# Of 100 hash buckets: [0, 10) test, [10, 20) validation, the rest train.
TEST_BUCKETS, VALIDATION_BUCKETS = 10, 10


def part_index(image_keys: tf.Tensor) -> tf.Tensor:
    """int32 index into `PARTS` for each image key (string tensor of any shape)."""
    bucket = tf.strings.to_hash_bucket_fast(image_keys, 100)
    return tf.where(bucket < TEST_BUCKETS, 2, tf.where(bucket < TEST_BUCKETS + VALIDATION_BUCKETS, 1, 0))


def parts_of(image_keys: Sequence[str]) -> np.ndarray:
    """`PARTS` name of each key, as a numpy array of str."""
    if not len(image_keys):
        return np.zeros(0, dtype="<U10")
    return np.asarray(PARTS)[part_index(tf.constant(list(image_keys))).numpy()]


def check_part(part: str, available: Sequence[str] = PARTS + ("all",)) -> str:
    """`part` itself, or a clear error listing the parts there are."""
    if part not in available:
        raise ValueError(f"Unknown split {part!r}; choose one of {list(available)}.")
    return part
