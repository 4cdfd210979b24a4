"""`GroundedFusion`: each word finds its object, then pairs of words compare where their objects are.

Cross-attention alone lets every word look at every patch, and the [CLS] state
ends up with a bag of the objects the caption names: "a red circle above a
blue square" and its swapped twin look the same. This fusion makes the steps
a grounded statement needs explicit:

1. Ground: every text token scores every image cell (query . key, per head).
   The softmax of the scores says where the token looks; the token reads back
   the cells' content *and their (y, x) coordinates* (CoordConv-style explicit
   positions), the best score (is there a cell that fits me at all?) and a
   soft count of fitting cells.
2. Relate: a one-layer Relation Network g(z_t, z_u, p_t - p_u) over every pair
   of real tokens (Santoro et al. 2017), with the difference of the two tokens'
   grounded positions as a direct input, averaged over pairs.
3. Decide: the mean grounded token, the relation vector and the evidence
   (the best scores and counts of the words that need an object) -> Dense.

The grounding weights are what `attention_maps` returns, so the plots and the
word->object measure show what the model actually uses.
"""

from __future__ import annotations

import keras
from keras import ops


def cell_coordinates(grid_size: tuple[int, int]):
    """(y, x) of every cell centre of a grid_h x grid_w grid, in [-1, 1], row-major [N, 2]."""
    height, width = grid_size
    ys = (ops.arange(height, dtype="float32") + 0.5) / height * 2.0 - 1.0
    xs = (ops.arange(width, dtype="float32") + 0.5) / width * 2.0 - 1.0
    y, x = ops.meshgrid(ys, xs, indexing="ij")
    return ops.stack([ops.reshape(y, (-1,)), ops.reshape(x, (-1,))], axis=-1)


@keras.saving.register_keras_serializable(package="gemini_tf")
class GroundedFusion(keras.layers.Layer):
    """Ground each token on the image cells, then relate pairs of tokens.

    Args:
        hidden_dim: width of text and image states (and of the output).
        num_heads: grounding heads; each gives every token its own position estimate.
        intermediate_dim: width of the relation features.
        grid_size: (rows, columns) of the image encoder's patch grid.
        dropout: dropout rate on the joint vector.
    """

    def __init__(
        self,
        hidden_dim: int,
        num_heads: int,
        intermediate_dim: int,
        grid_size: tuple[int, int],
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.grid_size = tuple(grid_size)
        self.dropout = dropout
        self.key_dim = hidden_dim // num_heads
        dense = keras.layers.Dense
        self._text_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="text_norm")
        self._image_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="image_norm")
        self._query = dense(hidden_dim, use_bias=False, name="query")
        self._key = dense(hidden_dim, use_bias=False, name="key")
        self._value = dense(hidden_dim, name="value")
        self._read = dense(hidden_dim, name="read")
        self._token_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="token_norm")
        self._left = dense(intermediate_dim, name="pair_left")
        self._right = dense(intermediate_dim, use_bias=False, name="pair_right")
        self._offset = dense(intermediate_dim, use_bias=False, name="pair_offset")
        self._gate = dense(num_heads, name="evidence_gate")
        self._dropout = keras.layers.Dropout(dropout)
        self._output = dense(hidden_dim, activation="gelu", name="output")

    def build(self, *input_shapes):
        d, h, i = self.hidden_dim, self.num_heads, self.intermediate_dim
        states = (None, None, d)
        for layer in (
            self._text_norm,
            self._image_norm,
            self._query,
            self._key,
            self._value,
            self._token_norm,
            self._left,
            self._right,
        ):
            layer.build(states)
        self.count_threshold = self.add_weight(
            shape=(h,), initializer=keras.initializers.Constant(1.0), name="count_threshold"
        )
        self._read.build((None, None, d + 4 * h))
        self._offset.build((None, None, None, 2 * h))
        self._output.build((None, d + i + 2 * h))
        self.built = True

    def _heads(self, x):
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        return ops.transpose(ops.reshape(x, (batch, length, self.num_heads, self.key_dim)), (0, 2, 1, 3))

    def scores(self, text_sequence, image_sequence):
        """Grounding scores [batch, heads, text_len, cells]: how well each cell fits each token."""
        query = self._heads(self._query(self._text_norm(text_sequence)))
        key = self._heads(self._key(self._image_norm(image_sequence)))
        return ops.matmul(query, ops.transpose(key, (0, 1, 3, 2))) / (self.key_dim**0.5)

    def call(self, text_sequence, text_mask, image_sequence, text_pooled, image_pooled, training=None):
        batch, length = ops.shape(text_sequence)[0], ops.shape(text_sequence)[1]
        scores = self.scores(text_sequence, image_sequence)  # [B, H, L, N]
        weights = ops.softmax(scores, axis=-1)
        value = self._heads(self._value(self._image_norm(image_sequence)))
        content = ops.reshape(ops.transpose(ops.matmul(weights, value), (0, 2, 1, 3)), (batch, length, -1))
        position = ops.einsum("bhln,nc->blhc", weights, cell_coordinates(self.grid_size))
        position = ops.reshape(position, (batch, length, 2 * self.num_heads))
        best = ops.transpose(ops.logsumexp(scores, axis=-1), (0, 2, 1))  # [B, L, H]
        count = ops.sum(ops.sigmoid(4.0 * (scores - self.count_threshold[None, :, None, None])), axis=-1)
        count = ops.transpose(count, (0, 2, 1))
        tokens = self._token_norm(
            text_sequence + self._read(ops.concatenate([content, position, best, count], axis=-1))
        )
        mask = ops.cast(text_mask, tokens.dtype)

        # Relation Network over token pairs, one layer: mean_tu GELU(A z_t + B z_u + C (p_t - p_u)).
        offset = position[:, :, None, :] - position[:, None, :, :]
        pairs = keras.activations.gelu(
            self._left(tokens)[:, :, None, :] + self._right(tokens)[:, None, :, :] + self._offset(offset)
        )
        pair_mask = mask[:, :, None] * mask[:, None, :]
        relation = (
            ops.sum(pairs * pair_mask[..., None], axis=(1, 2))
            / ops.maximum(ops.sum(pair_mask, axis=(1, 2)), 1.0)[:, None]
        )
        grounded = ops.sum(tokens * mask[..., None], axis=1) / ops.maximum(ops.sum(mask, axis=1), 1.0)[:, None]
        # Evidence: does every word that needs an object find one? A gate per token and head picks
        # the words that count; their best scores and counts reach the decision directly.
        gate = ops.sigmoid(self._gate(text_sequence)) * mask[..., None]  # [B, L, H]
        norm = ops.maximum(ops.sum(gate, axis=1), 1e-3)
        evidence = ops.concatenate([ops.sum(gate * best, axis=1) / norm, ops.sum(gate * count, axis=1) / norm], -1)
        joint = ops.concatenate([grounded, relation, evidence], axis=-1)
        return self._output(self._dropout(joint, training=training))

    def attention_maps(self, text_sequence, text_mask, image_sequence):
        """Grounding weights [batch, heads, text_len, cells]: where each token looks."""
        return ops.softmax(self.scores(text_sequence, image_sequence), axis=-1)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "grid_size": list(self.grid_size),
            "dropout": self.dropout,
        }
