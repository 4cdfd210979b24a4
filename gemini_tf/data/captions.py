"""`CaptionSet`: images with one or more captions each, for ITC/ITM training and retrieval.

Flickr8k, COCO captions, caption manifests and Shapes captions all load into a
`CaptionSet`: `images` (unique file paths, or decoded uint8 images), `texts`
(all captions) and `image_index` (for each caption, the row of its image).
Recall@K uses `image_index` to know that all of an image's captions are
correct answers.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from gemini_tf.data import pipeline
from gemini_tf.data.records import Record, read_images
from gemini_tf.data.report import DataReport
from gemini_tf.preprocessing.text import TextPreprocessor

# Training photos are cached at 5/4 of the model's input size, so random crops keep detail.
AUGMENT_CACHE_SCALE = 1.25


@dataclasses.dataclass
class CaptionSet:
    images: list[str] | np.ndarray  # file paths, or decoded uint8 images [N, H, W, 3]
    texts: list[str]
    image_index: np.ndarray
    report: DataReport | None = None

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def num_images(self) -> int:
        return len(self.images)

    @classmethod
    def from_records(cls, records: list[Record], report: DataReport | None = None) -> CaptionSet:
        """Groups records by image file (in first-seen order)."""
        rows: dict[str, int] = {}
        index = [rows.setdefault(r.image, len(rows)) for r in records]
        return cls(list(rows), [r.text for r in records], np.asarray(index, np.int32), report)

    def select_images(self, rows) -> CaptionSet:
        """The images at `rows` (in that order) with all their captions, re-indexed."""
        rows = np.asarray(rows, np.int64)
        new_row = np.full(len(self.images), -1, np.int64)
        new_row[rows] = np.arange(len(rows))
        keep = new_row[self.image_index] >= 0
        images = self.images[rows] if isinstance(self.images, np.ndarray) else [self.images[r] for r in rows]
        return CaptionSet(
            images,
            [t for t, k in zip(self.texts, keep) if k],
            new_row[self.image_index[keep]].astype(np.int32),
            self.report,
        )

    def first(self, count: int | None) -> CaptionSet:
        """The first `count` images with all their captions (all of them for None)."""
        return self if count is None else self.select_images(np.arange(min(count, self.num_images)))

    def pixels(self, size: tuple[int, int], progress: bool = False) -> np.ndarray:
        """Every image decoded and resized to `size`: uint8 [num_images, *size, 3]."""
        if isinstance(self.images, np.ndarray):
            if tuple(self.images.shape[1:3]) == tuple(size):
                return self.images
            return np.asarray(tf.cast(tf.round(tf.image.resize(self.images, size, antialias=True)), tf.uint8))
        return read_images(self.images, size, progress)

    def dataset(
        self,
        preprocessor: TextPreprocessor,
        image_size: tuple[int, int],
        batch_size: int = 64,
        shuffle: bool = False,
        augment: bool = False,
        seed: int = 0,
        progress: bool = False,
    ) -> tf.data.Dataset:
        """((token_ids, images, image_ids),) batches, the input of `ContrastiveTrainer`.

        Images are decoded once into memory; with `augment` (random resized crop,
        caption-aware flip) at 5/4 of `image_size`. Shuffled datasets drop the last
        partial batch (in-batch negatives need full batches).
        """
        size = tuple(int(s * AUGMENT_CACHE_SCALE) for s in image_size) if augment else tuple(image_size)
        return pipeline.from_captions(
            self.pixels(size, progress),
            self.texts,
            self.image_index,
            preprocessor,
            image_size,
            batch_size,
            shuffle,
            augment,
            seed,
        )
