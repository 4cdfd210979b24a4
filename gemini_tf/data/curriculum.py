"""`StagedGroups`: Shapes caption groups in stages — objects first, then relations — as one stream for `fit`.

Listwise training on the default mix of captions learns objects (colour, shape,
size, count) but leaves relations at chance: "A above B" only becomes learnable
once words are grounded on their objects, and on relation-only groups from
scratch nothing is learnt at all (the true caption and its rivals name the same
objects, so there is no signal to ground them). Staging fixes both: the first
stage is the default mix, the second draws fresh scenes whose true captions are
mostly relations, each met by its relation-word and swapped rivals (issue #11
"curriculum", Kuhnle et al. 2018).

The stages play one after the other as a single finite stream, so `fit` needs
`steps_per_epoch` (Keras then keeps one iterator across epochs). Every stage
has as many groups as the first, so an epoch is `len(view)` groups whichever
stage it is in. An interrupted run resumes at its epoch but replays the stream
from the first stage.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from gemini_tf.data.shapes import GroupSet


@dataclasses.dataclass
class StagedGroups:
    """Caption groups in stages, each stage played for its share of the epochs.

    Args:
        stages: `GroupSet`s of equal length, in the order they are played.
        shares: the fraction of the epochs each stage gets (summing to 1).
    """

    stages: list[GroupSet]
    shares: list[float]

    def __post_init__(self):
        if len(self.stages) != len(self.shares) or not self.stages:
            raise ValueError("StagedGroups needs one share per stage, and at least one stage.")
        if len({len(stage) for stage in self.stages}) != 1:
            raise ValueError(f"Every stage must hold as many groups; got {[len(s) for s in self.stages]}.")
        if abs(sum(self.shares) - 1.0) > 1e-6 or min(self.shares) < 0:
            raise ValueError(f"Stage shares must be non-negative and sum to 1, got {self.shares}.")

    def __len__(self) -> int:
        """Groups per epoch."""
        return len(self.stages[0])

    @property
    def texts(self) -> list[list[str]]:
        return [group for stage in self.stages for group in stage.texts]

    def first(self, count: int | None) -> StagedGroups:
        """The first `count` groups of every stage (all of them for None)."""
        return StagedGroups([stage.first(count) for stage in self.stages], self.shares)

    def stage_epochs(self, epochs: int) -> list[int]:
        """Epochs of each stage: the shares of `epochs`, rounded, every stage but the first at least one
        when there are enough epochs; they sum to `epochs`."""
        later = [max(1, round(share * epochs)) if epochs >= len(self.stages) else 0 for share in self.shares[1:]]
        first = epochs - sum(later)
        if first < 1:
            raise ValueError(f"{epochs} epochs are too few for stages with shares {self.shares}.")
        return [first, *later]

    def dataset(
        self,
        preprocessor,
        image_size: tuple[int, int],
        epochs: int,
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int = 0,
    ) -> tf.data.Dataset:
        """The whole run's batches, stage after stage: `epochs` x `steps_per_epoch(batch_size)` of them."""
        stream = None
        for index, (stage, count) in enumerate(zip(self.stages, self.stage_epochs(epochs))):
            if count == 0:
                continue
            part = stage.dataset(preprocessor, image_size, batch_size, shuffle, seed + index).repeat(count)
            stream = part if stream is None else stream.concatenate(part)
        return stream

    def steps_per_epoch(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)
