"""The task head: one logit from the fused vector and a bilinear image-text score, read as a probability."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="gemini_tf")
class MatchHead(keras.layers.Layer):
    """(fused [batch, dim], contrastive logit [batch, 1]) -> probability [batch, 1] through a sigmoid.

    The logit is Dense(fused) + w * contrastive logit: the fine-grained fusion
    and the global image-text similarity of the retrieval embeddings both vote;
    w starts small (0.1, "more similar, more likely a match"), so a fresh model
    leans on the fusion while the embeddings still get gradients from step one. Named after the
    task ("itm" or "classify"), so exported outputs and metrics carry it.
    Trainers use `logits` (the pre-sigmoid score) for their losses.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(1, name="logit")

    def build(self, fused_shape, similarity_logits_shape=None):
        self.dense.build(fused_shape)
        self.similarity_weight = self.add_weight(shape=(), initializer="ones", name="similarity_weight")
        self.built = True

    def logits(self, fused, similarity_logits):
        """Match logits [batch]."""
        return ops.reshape(self.dense(fused) + self.similarity_weight * similarity_logits, (-1,))

    def call(self, fused, similarity_logits):
        return ops.sigmoid(self.dense(fused) + self.similarity_weight * similarity_logits)

    def compute_output_shape(self, fused_shape, similarity_logits_shape=None):
        return (*fused_shape[:-1], 1)
