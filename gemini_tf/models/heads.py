"""The task head: one logit from the fused vector and a bilinear image-text score, read as a probability."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="gemini_tf")
class MatchHead(keras.layers.Layer):
    """(fused [batch, dim], scores [batch, k]) -> probability [batch, 1] through a sigmoid.

    The logit is Dense(fused) + w . scores: the fine-grained fusion, the global
    image-text similarity of the retrieval embeddings and the fusion's own
    word-level score all vote. w starts at 1 by default: the raw similarity of a
    fresh model is a large random bilinear term whose gradient gets plain binary
    cross-entropy off the ground for the cross-attention fusion (started at 0.1
    it stays at chance, at 3 it learns slower; measured on the README's Keras
    workflow). Named after the task ("itm" or "classify"), so exported outputs
    and metrics carry it. Trainers use `logits` (the pre-sigmoid score) for
    their losses. Computes in float32 unless given another `dtype`, so logits
    and probabilities stay float32 under a mixed precision policy.

    Args:
        similarity_weight: the starting weight of the first score, the pooled image-text
            similarity (the others start at 1). 0 suits a fusion whose own word-level score is
            first-order already (`GroundedFusion(phrase_relations=True)`): the bag-of-words
            similarity then only joins where it helps.
    """

    def __init__(self, similarity_weight: float = 1.0, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.similarity_weight = similarity_weight
        self.dense = keras.layers.Dense(1, name="logit", dtype=self.dtype_policy)

    def build(self, fused_shape, scores_shape=None):
        self.dense.build(fused_shape)
        self.score_weights = self.add_weight(shape=(scores_shape[-1],), initializer="ones", name="score_weights")
        start = np.ones(scores_shape[-1], "float32")
        start[0] = self.similarity_weight
        self.score_weights.assign(start)
        self.built = True

    def logits(self, fused, scores):
        """Match logits [batch] (in the head's compute dtype, whatever the inputs')."""
        fused, scores = ops.cast(fused, self.compute_dtype), ops.cast(scores, self.compute_dtype)
        return ops.reshape(self.dense(fused), (-1,)) + ops.sum(self.score_weights * scores, axis=-1)

    def call(self, fused, scores):
        return ops.sigmoid(self.dense(fused) + ops.sum(self.score_weights * scores, axis=-1, keepdims=True))

    def compute_output_shape(self, fused_shape, scores_shape=None):
        return (*fused_shape[:-1], 1)

    def get_config(self):
        return {**super().get_config(), "similarity_weight": self.similarity_weight}
