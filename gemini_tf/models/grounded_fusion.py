"""`GroundedFusion`: cross-attention, then each word finds its object and the relation is read from where.

Cross-attention alone reads a caption as a bag of objects: "a red circle above
a blue square" and its swapped twin fuse to the same vector. This fusion keeps
the `CrossAttentionFusion` blocks and adds a grounding head on the resulting
token states, which by then know their phrase ("circle" knows it is the red
one):

1. Ground: every token scores every image cell (query . key, per head). The
   softmax over cells says where the token looks, and gives the token an
   explicit (y, x) position: the weighted mean of the cells' coordinates
   (CoordConv's explicit positions, Liu et al. 2018).
2. Evidence: the best score of each token (log-sum-exp over cells, 0 when no
   cell stands out), averaged over the tokens a learned gate says must find
   an object: does every phrase have its object? With `phrase_evidence`, the
   score of each pair of neighbouring words at the same cell instead (the sum
   of their two scores): colour and shape are matched one by one and bound by
   the cell, so combinations never seen in training are read like seen ones.
3. Relate: over every pair of gated tokens in sentence order ("A above B"
   names A first), the later token's position minus the earlier one's, dotted
   with a direction read from the text ("above" and "below" point opposite
   ways): the relation score. With `phrase_relations` the positions come from the
   phrase evidence's grounding instead, so every statement's training places the
   objects a relation needs.

Evidence and relation are one score that goes to the task head beside the
fused vector, first-order in the grounding: that is what makes them learnable
with plain binary cross-entropy. `attention_maps` returns the grounding
weights, so plots and the word->object measure show what the model uses.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from gemini_tf.models.fusion import CrossAttentionFusion

TINY = 1e-12  # the smallest gate whose log is taken
LEFT_OUT = -30.0  # log-weight added to padding tokens and to pairs out of sentence order (e^-30 ~ 1e-13)
NOTHING = 1e-3  # weight of an empty entry with value 0: means shrink to 0 when the gates sum to less


def gated_mean(log_weights, values):
    """sum(w * values) / (sum(w) + NOTHING) over axis 1, from log w [B, N, ...]: a softmax with one
    extra empty entry. int8 TFLite runs it safely; a division by a sum near zero quantizes the
    divisor to exactly zero, which LiteRT refuses."""
    empty = ops.full_like(log_weights[:, :1], float(np.log(NOTHING)))
    weights = ops.softmax(ops.concatenate([log_weights, empty], axis=1), axis=1)[:, :-1]
    return ops.sum(weights * values, axis=1)


def cell_coordinates(grid_size: tuple[int, int], dtype: str = "float32"):
    """(y, x) of every cell centre of a rows x columns grid, in [-1, 1], row-major: [cells, 2]."""
    rows, columns = grid_size
    ys = (ops.arange(rows, dtype="float32") + 0.5) / rows * 2.0 - 1.0
    xs = (ops.arange(columns, dtype="float32") + 0.5) / columns * 2.0 - 1.0
    y, x = ops.meshgrid(ys, xs, indexing="ij")
    return ops.cast(ops.stack([ops.reshape(y, (-1,)), ops.reshape(x, (-1,))], axis=-1), dtype)


def check_phrase_options(phrase_evidence: bool, phrase_relations: bool) -> None:
    """A clear error for phrase relations without the phrase evidence they are read from."""
    if phrase_relations and not phrase_evidence:
        raise ValueError("phrase_relations reads relations from the phrase evidence: set phrase_evidence=True.")


@keras.saving.register_keras_serializable(package="gemini_tf")
class GroundedFusion(CrossAttentionFusion):
    """`CrossAttentionFusion` plus a grounding head: word-level evidence and relation scores.

    Args:
        hidden_dim: width of text and image states (and of the fused vector).
        num_layers: cross-attention blocks.
        num_heads: attention heads; each grounding head gives every token its own position.
        intermediate_dim: feed-forward width of the blocks.
        grid_size: (rows, columns) of the image encoder's patch grid.
        dropout: dropout rate in the blocks.
        phrase_evidence: read the evidence from pairs of neighbouring words that must fit the
            same cell, scored on the text encoder's word states (not fused with the image):
            "blue" + "circle" peaks on a blue circle even if no training scene had one.
        phrase_relations: also locate the related objects by that phrase grounding (not by the fused
            tokens' own), and make the evidence a soft AND over phrases. The grounding every statement
            trains then places the objects of the relation, which is what lets plain binary
            cross-entropy learn relations (the README's Keras workflow).
    """

    def __init__(
        self,
        hidden_dim: int,
        num_layers: int,
        num_heads: int,
        intermediate_dim: int,
        grid_size: tuple[int, int],
        dropout: float = 0.0,
        phrase_evidence: bool = False,
        phrase_relations: bool = False,
        **kwargs,
    ):
        check_phrase_options(phrase_evidence, phrase_relations)
        super().__init__(hidden_dim, num_layers, num_heads, intermediate_dim, dropout, **kwargs)
        self.phrase_evidence = phrase_evidence
        self.phrase_relations = phrase_relations
        self._word_query = (
            keras.layers.Dense(hidden_dim, use_bias=False, name="word_query") if phrase_evidence else None
        )
        self.grid_size = tuple(grid_size)
        self.key_dim = hidden_dim // num_heads
        self._image_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="image_norm")
        # With phrase relations every grounding is the word query's: no second one to train.
        self._query = None if phrase_relations else keras.layers.Dense(hidden_dim, use_bias=False, name="ground_query")
        self._key = keras.layers.Dense(hidden_dim, use_bias=False, name="ground_key")
        self._gate = keras.layers.Dense(num_heads, name="evidence_gate")
        self._direction = keras.layers.Dense(2 * num_heads, name="relation_direction")

    def build(self, *input_shapes):
        super().build(*input_shapes)
        states = (None, None, self.hidden_dim)
        for layer in (self._image_norm, self._query, self._key, self._gate, self._direction, self._word_query):
            if layer is not None:
                layer.build(states)

    def _heads(self, x):
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        return ops.transpose(ops.reshape(x, (batch, length, self.num_heads, self.key_dim)), (0, 2, 1, 3))

    def scores(self, tokens, image_sequence, query_layer=None):
        """Grounding scores [batch, heads, text_len, cells]: how well each cell fits each token."""
        query = self._heads((query_layer or self._query)(tokens))
        key = self._heads(self._key(self._image_norm(image_sequence)))
        return ops.matmul(query, ops.transpose(key, (0, 1, 3, 2))) / (self.key_dim**0.5)

    def call(self, text_sequence, text_mask, image_sequence, text_pooled, image_pooled, training=None):
        tokens = self.attend(text_sequence, text_mask, image_sequence, training)
        mask = ops.cast(text_mask, tokens.dtype)[..., None]  # [B, L, 1]
        log_gate = ops.log(ops.maximum(ops.sigmoid(self._gate(tokens)), TINY)) + (1.0 - mask) * LEFT_OUT  # [B, L, H]
        scores = None if self.phrase_relations else self.scores(tokens, image_sequence)  # [B, H, L, N]
        if self.phrase_evidence:
            # Each pair of neighbouring words must fit the same cell: "blue" + "circle" peaks on a blue
            # circle, read from the text encoder's own word states (not fused with the image).
            words = self.scores(text_sequence, image_sequence, self._word_query)  # [B, H, L, N]
            phrases, phrase_gate = words[:, :, :-1] + words[:, :, 1:], log_gate[:, :-1] + log_gate[:, 1:]
            evidence = self._evidence(phrases, phrase_gate)
        else:
            evidence = self._evidence(scores, log_gate)
        if self.phrase_relations:
            relation = self._relation(phrases, phrase_gate, tokens, mask)
        else:
            relation = self._relation(scores, log_gate, tokens, mask)
        score = ops.mean(evidence + relation, axis=-1, keepdims=True)
        return self.pool(tokens, text_mask), score

    def _evidence(self, scores, log_gate):
        """Each entry's best cell (log-sum-exp, 0 when none stands out), averaged over the gated entries
        [B, H]. With `phrase_relations` the worst-fitting entries weigh most (a soft AND: one phrase
        without its object makes the claim false)."""
        cells = ops.cast(ops.shape(scores)[-1], scores.dtype)
        best = ops.transpose(ops.logsumexp(scores, axis=-1) - ops.log(cells), (0, 2, 1))  # [B, L, H]
        if self.phrase_relations:
            log_gate = log_gate - ops.stop_gradient(best)
        return gated_mean(log_gate, best)

    def _relation(self, scores, log_gate, tokens, mask):
        """direction(text) . (where later gated entries look - where earlier ones look) [B, H], over
        every pair of entries in sentence order: "A above B" names A first."""
        batch, length = ops.shape(scores)[0], ops.shape(scores)[2]
        weights = ops.softmax(scores, axis=-1)
        position = ops.einsum("bhln,nc->blhc", weights, cell_coordinates(self.grid_size, weights.dtype))  # [B, L, H, 2]
        later = ops.cast(ops.arange(length)[None, :] > ops.arange(length)[:, None], weights.dtype)  # [t, u]
        log_pair = log_gate[:, :, None, :] + log_gate[:, None, :, :] + (1.0 - later)[None, :, :, None] * LEFT_OUT
        offset = position[:, None, :] - position[:, :, None]  # [B, t, u, H, 2]: P_u - P_t
        offset = gated_mean(
            ops.reshape(log_pair, (batch, length * length, self.num_heads, 1)),
            ops.reshape(offset, (batch, length * length, self.num_heads, 2)),
        )  # [B, H, 2]
        direction = ops.sum(self._direction(tokens) * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1.0)
        return ops.sum(ops.reshape(direction, (batch, self.num_heads, 2)) * offset, axis=-1)

    def attention_maps(self, text_sequence, text_mask, image_sequence):
        """Grounding weights [batch, heads, text_len, cells]: where each token looks (with
        `phrase_relations`, each word of the text encoder, the grounding the model reads)."""
        if self.phrase_relations:
            return ops.softmax(self.scores(text_sequence, image_sequence, self._word_query), axis=-1)
        tokens = self.attend(text_sequence, text_mask, image_sequence)
        return ops.softmax(self.scores(tokens, image_sequence), axis=-1)

    def get_config(self):
        return {
            **super().get_config(),
            "grid_size": list(self.grid_size),
            "phrase_evidence": self.phrase_evidence,
            "phrase_relations": self.phrase_relations,
        }
