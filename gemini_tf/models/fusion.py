"""Fusion of text and image states into one joint vector, chosen by name.

* `ConcatFusion`: pooled text (+) pooled image -> MLP. Cheap, but it cannot bind
  attributes to objects ("red circle and blue square" vs "blue circle and red square").
* `CrossAttentionFusion`: text tokens attend to image patches through keras-hub
  `TransformerDecoder` blocks (no causal mask), then the tokens' mean -> MLP.
"""

from __future__ import annotations

import keras
import keras_hub
from keras import ops

from gemini_tf.config import GeminiConfig
from gemini_tf.layers.layer_scale import LayerScale
from gemini_tf.models.grounded_fusion import GroundedFusion


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
        return self._output(x)

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
        self.blocks = [
            keras_hub.layers.TransformerDecoder(
                intermediate_dim,
                num_heads,
                dropout=dropout,
                activation="gelu",
                normalize_first=True,
                name=f"cross_block_{i}",
            )
            for i in range(num_layers)
        ]
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
        weights = ops.cast(text_mask, x.dtype)[..., None]
        return self._output(ops.sum(self._norm(x) * weights, axis=1) / ops.sum(weights, axis=1))

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


def fusion_layer(config: GeminiConfig) -> keras.layers.Layer:
    """The fusion `config.fusion` names ("concat", "cross_attention" or "grounded"), sized by `config`."""
    if config.fusion == "concat":
        return ConcatFusion(config.hidden_dim, config.dropout, name="fusion")
    if config.fusion == "cross_attention":
        return CrossAttentionFusion(
            config.hidden_dim,
            config.fusion_layers,
            config.num_heads,
            config.intermediate_dim,
            config.dropout,
            name="fusion",
        )
    return GroundedFusion(
        config.hidden_dim, config.num_heads, config.intermediate_dim, config.grid_size, config.dropout, name="fusion"
    )
