"""Fusion of text and image states, chosen by name (`gemini.fusion_layer`).

Every fusion returns (fused vector [batch, hidden_dim], word-level score
[batch, 1]); the task head reads both. These two have no word-level score (0):

* `ConcatFusion`: pooled text (+) pooled image -> MLP. Cheap, but it cannot bind
  attributes to objects ("red circle and blue square" vs "blue circle and red square").
* `CrossAttentionFusion`: text tokens attend to image patches through keras-hub
  `TransformerDecoder` blocks (no causal mask), then the tokens' mean -> MLP.

`grounded_fusion.GroundedFusion` adds a grounding head with a real score.
"""

from __future__ import annotations

import keras
from keras import ops

from gemini_tf.layers.encoder_blocks import decoder_blocks
from gemini_tf.layers.layer_scale import LayerScale


@keras.saving.register_keras_serializable(package="gemini_tf")
class ConcatFusion(keras.layers.Layer):
    """[text_pooled, image_pooled] -> Dense(GELU) x 2 -> [batch, hidden_dim]."""

    def __init__(self, hidden_dim: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self._concat = keras.layers.Concatenate(name="concat")
        self._hidden = keras.layers.Dense(2 * hidden_dim, activation="gelu", name="hidden")
        self._dropout = keras.layers.Dropout(dropout)
        self._output = keras.layers.Dense(hidden_dim, activation="gelu", name="output")

    def build(self, *input_shapes):
        # Both encoders emit hidden_dim-wide states, so the shapes follow from the config.
        self._hidden.build((None, 2 * self.hidden_dim))
        self._output.build((None, 2 * self.hidden_dim))
        self.built = True

    def call(self, text_sequence, text_mask, image_sequence, text_pooled, image_pooled, training=None):
        x = self._concat([text_pooled, image_pooled])
        x = self._dropout(self._hidden(x), training=training)
        return self._output(x), ops.zeros_like(x[:, :1])

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="gemini_tf")
class CrossAttentionFusion(keras.layers.Layer):
    """Text tokens attend to image patches; the mean of the real tokens' states -> Dense(GELU)."""

    def __init__(
        self,
        hidden_dim: int,
        num_layers: int,
        num_heads: int,
        intermediate_dim: int,
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.blocks = decoder_blocks(num_layers, num_heads, intermediate_dim, dropout, "cross_block")
        self.scales = [LayerScale(name=f"layer_scale_{i}") for i in range(num_layers)]
        self._norm = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")
        self._output = keras.layers.Dense(hidden_dim, activation="gelu", name="output")

    def build(self, *input_shapes):
        # Both encoders emit hidden_dim-wide states, so the shapes follow from the config.
        states = (None, None, self.hidden_dim)
        for block, scale in zip(self.blocks, self.scales):
            block.build(states, states)
            scale.build(states)
        self._norm.build(states)
        self._output.build((None, self.hidden_dim))
        self.built = True

    def call(self, text_sequence, text_mask, image_sequence, text_pooled, image_pooled, training=None):
        tokens = self.attend(text_sequence, text_mask, image_sequence, training)
        return self.pool(tokens, text_mask), ops.zeros_like(tokens[:, 0, :1])

    def attend(self, text_sequence, text_mask, image_sequence, training=None):
        """Token states after the cross-attention blocks, normalised: [batch, text_len, hidden_dim]."""
        x = text_sequence
        for block, scale in zip(self.blocks, self.scales):
            update = block(
                x,
                encoder_sequence=image_sequence,
                decoder_padding_mask=text_mask,
                use_causal_mask=False,
                training=training,
            )
            x = scale(x, update)
        return self._norm(x)

    def pool(self, tokens, text_mask):
        """The mean of the real tokens' states -> Dense(GELU): the fused vector."""
        weights = ops.cast(text_mask, tokens.dtype)[..., None]
        return self._output(ops.sum(tokens * weights, axis=1) / ops.sum(weights, axis=1))

    def attention_maps(self, text_sequence, text_mask, image_sequence):
        """Cross-attention weights of the first block: [batch, heads, text_len, patches].

        Recomputes the first block's self-attention sub-layer, then asks its
        cross-attention layer for scores (keras-hub returns none from the block).
        """
        block = self.blocks[0]
        mask = keras.ops.logical_and(text_mask[:, :, None], text_mask[:, None, :])
        x = block._self_attention_layer_norm(text_sequence)
        x = text_sequence + block._self_attention_layer(query=x, value=x, attention_mask=mask)
        _, scores = block._cross_attention_layer(
            query=block._cross_attention_layer_norm(x),
            value=image_sequence,
            return_attention_scores=True,
        )
        return scores

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
        }
