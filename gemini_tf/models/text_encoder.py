"""Transformer text encoder: token ids -> token states and their masked mean."""

from __future__ import annotations

import keras
import keras_hub

from gemini_tf.layers.encoder_blocks import scaled_encoder_blocks


@keras.saving.register_keras_serializable(package="gemini_tf")
class TextEncoder(keras.Model):
    """Token + position embeddings, then pre-norm `TransformerEncoder` blocks.

    Input: int32 token ids [batch, sequence_length], 0 = [PAD] (masked out).
    Outputs: {"sequence": [batch, sequence_length, hidden_dim],
              "pooled": [batch, hidden_dim]} (the mean of the real tokens' states:
              every word reaches it directly, where [CLS] would hear them only
              through attention).
    """

    def __init__(
        self,
        vocabulary_size: int,
        sequence_length: int,
        hidden_dim: int,
        num_layers: int,
        num_heads: int,
        intermediate_dim: int,
        dropout: float = 0.0,
        **kwargs,
    ):
        # === Layers ===
        embedding = keras_hub.layers.TokenAndPositionEmbedding(
            vocabulary_size, sequence_length, hidden_dim, name="token_and_position_embedding"
        )
        # As in BERT: a unit-scale residual stream, so each token's own embedding is not drowned
        # at initialisation by the attention average of all tokens.
        embedding_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="embedding_norm")
        blocks = scaled_encoder_blocks(num_layers, num_heads, intermediate_dim, dropout)
        final_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")

        # === Functional Model ===
        token_ids = keras.Input(shape=(sequence_length,), dtype="int32", name="token_ids")
        padding_mask = keras.ops.not_equal(token_ids, 0)
        x = embedding_norm(embedding(token_ids))
        for block, scale in blocks:
            x = scale(x, block(x, padding_mask=padding_mask))
        sequence = final_norm(x)
        weights = keras.ops.cast(padding_mask, sequence.dtype)[..., None]
        pooled = keras.ops.sum(sequence * weights, axis=1) / keras.ops.sum(weights, axis=1)
        super().__init__(inputs=token_ids, outputs={"sequence": sequence, "pooled": pooled}, **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.sequence_length = sequence_length
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "vocabulary_size": self.vocabulary_size,
            "sequence_length": self.sequence_length,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
