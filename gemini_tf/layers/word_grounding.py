"""`WordGrounding`: next-word logits from where the previous word and each candidate word fit the image.

A caption decoder learns P(next word | caption so far, image). Trained on scenes
where every red object is a circle or a square, its language model learns that
"red" is never followed by "triangle", and when a test scene holds a red
triangle it writes a red circle instead. This layer adds a term that reads the
binding from the image, the way the grounded fusion's phrase evidence does
(`GroundedFusion(phrase_evidence=True)`): every vocabulary word w and the
previous word p score every image cell on their own (non-contextual) word
vectors, and

    logit(w | p, image) += weight * (log sum_cells exp(s(p, cell) + s(w, cell)) - log cells)

is high when some cell fits both: after "a small red", "triangle" wins where the
red cell holds a triangle, whether or not training ever paired the two words.
The log-sum-exp over cells is a matrix product of exponentials (max-shifted),
so the layer is cheap and converts to TFLite builtins.
"""

from __future__ import annotations

import keras
from keras import ops

TINY = 1e-30  # the smallest shared exp-sum whose log is taken


@keras.saving.register_keras_serializable(package="gemini_tf")
class WordGrounding(keras.layers.Layer):
    """(token_ids [batch, length], image_states [batch, cells, dim]) -> logits [batch, length, vocabulary].

    The logits at t depend on token t (the previous word of the word predicted at t) and the image
    alone, so a causal decoder stays causal.

    Args:
        vocabulary_size: the words scored (the decoder's vocabulary).
        key_dim: width of the word and cell vectors that are dotted.
        initial_weight: the term's weight at initialisation (learned).
    """

    def __init__(self, vocabulary_size: int, key_dim: int, initial_weight: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.key_dim = key_dim
        self.initial_weight = initial_weight
        self.words = keras.layers.Embedding(vocabulary_size, key_dim, name="word_vectors")
        self._image_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="image_norm")
        self._cell_key = keras.layers.Dense(key_dim, use_bias=False, name="cell_key")

    def build(self, token_ids_shape, image_states_shape=None):
        self.words.build(token_ids_shape)
        self._image_norm.build(image_states_shape)
        self._cell_key.build(image_states_shape)
        self.weight = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.initial_weight), name="weight"
        )
        self.built = True

    def call(self, token_ids, image_states):
        keys = self._cell_key(self._image_norm(image_states)) / (self.key_dim**0.5)  # [B, N, k]
        previous = ops.einsum("blk,bnk->bln", self.words(token_ids), keys)  # [B, L, N]
        candidates = ops.einsum("vk,bnk->bvn", ops.convert_to_tensor(self.words.embeddings), keys)  # [B, V, N]
        # log sum_n exp(a_ln + c_vn) = log(exp(a - max a) @ exp(c - max c)^T) + max a + max c
        top_previous = ops.max(previous, axis=-1, keepdims=True)  # [B, L, 1]
        top_candidates = ops.max(candidates, axis=-1, keepdims=True)  # [B, V, 1]
        shared = ops.matmul(
            ops.exp(previous - top_previous), ops.transpose(ops.exp(candidates - top_candidates), (0, 2, 1))
        )
        cells = ops.cast(ops.shape(keys)[1], shared.dtype)
        # Floored so that two words peaking on far-apart cells give a very low fit, not log(0).
        fit = (
            ops.log(ops.maximum(shared, TINY))
            + top_previous
            + ops.transpose(top_candidates, (0, 2, 1))
            - ops.log(cells)
        )
        return self.weight * fit

    def compute_output_shape(self, token_ids_shape, image_states_shape=None):
        return (*token_ids_shape, self.vocabulary_size)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "key_dim": self.key_dim,
            "initial_weight": self.initial_weight,
        }
