"""`CaptionSet`: images with one or more captions each, for ITC/ITM training and retrieval.

Flickr8k, COCO captions and caption manifests all load into a `CaptionSet`:
`images` (unique file paths), `texts` (all captions) and `image_index`
(for each caption, the row of its image). Recall@K uses `image_index` to know
that all of an image's captions are correct answers.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gemini_tf.data.records import Record
from gemini_tf.data.report import DataReport


@dataclasses.dataclass
class CaptionSet:
    images: list[str] | np.ndarray  # file paths, or decoded uint8 images [N, H, W, 3]
    texts: list[str]
    image_index: np.ndarray
    report: DataReport | None = None

    def __len__(self) -> int:
        return len(self.texts)

    @classmethod
    def from_records(cls, records: list[Record], report: DataReport | None = None) -> "CaptionSet":
        """Groups records by image file (in first-seen order)."""
        rows: dict[str, int] = {}
        index = [rows.setdefault(r.image, len(rows)) for r in records]
        return cls(list(rows), [r.text for r in records], np.asarray(index, np.int32), report)

    def select_images(self, rows) -> "CaptionSet":
        """The images at `rows` (in that order) with all their captions, re-indexed."""
        rows = np.asarray(rows, np.int64)
        new_row = np.full(len(self.images), -1, np.int64)
        new_row[rows] = np.arange(len(rows))
        keep = new_row[self.image_index] >= 0
        return CaptionSet([self.images[r] for r in rows], [t for t, k in zip(self.texts, keep) if k],
                          new_row[self.image_index[keep]].astype(np.int32), self.report)

    def split(self, validation_images: int) -> tuple["CaptionSet", "CaptionSet"]:
        """(train, validation): the last `validation_images` images and their captions held out."""
        if not 0 < validation_images < len(self.images):
            raise ValueError(f"Cannot hold out {validation_images} of {len(self.images)} images.")
        cut = len(self.images) - validation_images
        return self.select_images(np.arange(cut)), self.select_images(np.arange(cut, len(self.images)))
