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

    def contrast_groups(self, seed: int = 0) -> ImageGroups:
        """Each text that is true of some images and false of others, with one image of each: every
        row labelled 1 whose text also has a row labelled 0 becomes [that image, a random such 0 row's].
        NLVR: a sentence with a scene where it holds and one where it does not."""
        rng = np.random.default_rng([seed, 31337])
        rows_of: dict[str, dict[int, list[int]]] = {}
        for row, (text, label) in enumerate(zip(self.texts, self.labels)):
            rows_of.setdefault(text, {0: [], 1: []})[int(label)].append(row)
        pairs = [
            (text, row, false_rows[int(rng.integers(len(false_rows)))])
            for text, rows in rows_of.items()
            for row, false_rows in ((r, rows[0]) for r in rows[1])
            if false_rows
        ]
        if not pairs:
            raise ValueError("No text is labelled both true (of one image) and false (of another): no contrast groups.")
        images = [[self.images[true], self.images[false]] for _, true, false in pairs]
        if isinstance(self.images, np.ndarray):
            images = np.stack([np.stack(group) for group in images])
        return ImageGroups([text for text, _, _ in pairs], images)

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


@dataclasses.dataclass
class ImageGroups:
    """One text with a group of images: the image it is true of first, then ones it is false of.

    `images`: file paths [N][K] or uint8 [N, K, H, W, 3]. Made by `LabelledPairs.contrast_groups`.
    """

    texts: list[str]
    images: list[list[str]] | np.ndarray

    def __len__(self) -> int:
        return len(self.texts)

    def first(self, count: int | None) -> ImageGroups:
        """The first `count` groups (all of them for None)."""
        return self if count is None else ImageGroups(self.texts[:count], self.images[:count])

    def dataset(
        self,
        preprocessor: TextPreprocessor,
        image_size: tuple[int, int],
        batch_size: int = 32,
        shuffle: bool = False,
        seed: int = 0,
    ) -> tf.data.Dataset:
        """((token_ids [B, L], images [B, K, H, W, 3]), labels [B, K]) for `ImageListwiseTrainer`."""
        return pipeline.from_image_groups(self.images, self.texts, preprocessor, image_size, batch_size, shuffle, seed)
