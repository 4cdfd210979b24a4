"""Transformer text encoder: token ids -> token states and a pooled [CLS] vector."""

from __future__ import annotations

import keras
import keras_hub


@keras.saving.register_keras_serializable(package="gemini_tf")
class TextEncoder(keras.Model):
    """Token + position embeddings, then pre-norm `TransformerEncoder` blocks.

    Input: int32 token ids [batch, sequence_length], 0 = [PAD] (masked out).
    Outputs: {"sequence": [batch, sequence_length, hidden_dim],
              "pooled": [batch, hidden_dim]} (the [CLS] token's state).
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
        blocks = [
            keras_hub.layers.TransformerEncoder(
                intermediate_dim, num_heads, dropout=dropout, activation="gelu",
                normalize_first=True, name=f"transformer_{i}",
            )
            for i in range(num_layers)
        ]
        final_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")

        # === Functional Model ===
        token_ids = keras.Input(shape=(sequence_length,), dtype="int32", name="token_ids")
        padding_mask = keras.ops.not_equal(token_ids, 0)
        x = embedding(token_ids)
        for block in blocks:
            x = block(x, padding_mask=padding_mask)
        sequence = final_norm(x)
        pooled = sequence[:, 0, :]
        super().__init__(
            inputs=token_ids, outputs={"sequence": sequence, "pooled": pooled}, **kwargs
        )

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
