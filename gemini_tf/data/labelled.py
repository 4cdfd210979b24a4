"""`LabelledPairs`: (image, text, label) rows held in memory, the unit of classification data.

NLVR, labelled manifests and Shapes statements all become `LabelledPairs`;
`dataset` turns them into `((token_ids, images), labels)` batches through the
one preprocessing path. Images are file paths (read and decoded in parallel
each epoch, only paths in memory) or decoded uint8 arrays.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from gemini_tf.data import pipeline
from gemini_tf.preprocessing.text import TextPreprocessor


@dataclasses.dataclass
class LabelledPairs:
    """Parallel rows: `images` (file paths or uint8 [N, H, W, 3]), `texts`, `labels` (0/1).

    `groups[i]` names the unit row i is voted with (NLVR: its sentence, whose six
    renderings share a label); `kinds[i]` says what kind of pair it is (Shapes:
    "positive" or the negative's kind).
    """

    images: list[str] | np.ndarray
    texts: list[str]
    labels: np.ndarray
    groups: list[str] | None = None
    kinds: list[str] | None = None

    def __post_init__(self):
        self.labels = np.asarray(self.labels, np.int32)
        if not len(self.images) == len(self.texts) == len(self.labels):
            raise ValueError(
                f"images ({len(self.images)}), texts ({len(self.texts)}) and labels "
                f"({len(self.labels)}) must have the same length."
            )

    def __len__(self) -> int:
        return len(self.texts)

    def select(self, rows) -> LabelledPairs:
        """The rows at `rows` (indices or a boolean mask), in that order."""
        rows = np.arange(len(self))[np.asarray(rows)]
        take = lambda values: None if values is None else [values[i] for i in rows]  # noqa: E731
        images = self.images[rows] if isinstance(self.images, np.ndarray) else take(self.images)
        return LabelledPairs(images, take(self.texts), self.labels[rows], take(self.groups), take(self.kinds))

    def first(self, count: int | None) -> LabelledPairs:
        """The first `count` rows (all of them for None)."""
        return self if count is None else self.select(np.arange(min(count, len(self))))

    def dataset(
        self,
        preprocessor: TextPreprocessor,
        image_size: tuple[int, int],
        batch_size: int = 64,
        shuffle: bool = False,
        seed: int = 0,
    ) -> tf.data.Dataset:
        """((token_ids, images), labels) batches."""
        if isinstance(self.images, np.ndarray):
            return pipeline.from_arrays(
                self.images, self.texts, self.labels, preprocessor, image_size, batch_size, shuffle, seed
            )
        return pipeline.from_files(
            self.images, self.texts, self.labels, preprocessor, image_size, batch_size, shuffle, seed
        )
