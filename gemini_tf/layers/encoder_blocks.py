"""The transformer stacks: self-attention (text and image encoders), cross-attention (fusion, caption decoder)."""

from __future__ import annotations

import keras_hub

from gemini_tf.layers.layer_scale import LayerScale


def scaled_encoder_blocks(
    num_layers: int, num_heads: int, intermediate_dim: int, dropout: float
) -> list[tuple[keras_hub.layers.TransformerEncoder, LayerScale]]:
    """Pre-norm GELU `TransformerEncoder` blocks, each paired with the `LayerScale` around it.

    Apply as `x = scale(x, block(x, ...))`. Layer names (`transformer_i`,
    `layer_scale_i`) are part of saved weights' paths.
    """
    return [
        (
            keras_hub.layers.TransformerEncoder(
                intermediate_dim,
                num_heads,
                dropout=dropout,
                activation="gelu",
                normalize_first=True,
                name=f"transformer_{i}",
            ),
            LayerScale(name=f"layer_scale_{i}"),
        )
        for i in range(num_layers)
    ]


def decoder_blocks(
    num_layers: int, num_heads: int, intermediate_dim: int, dropout: float, name: str
) -> list[keras_hub.layers.TransformerDecoder]:
    """Pre-norm GELU `TransformerDecoder` blocks named `{name}_{i}` (self-attention, then
    cross-attention to the other modality)."""
    return [
        keras_hub.layers.TransformerDecoder(
            intermediate_dim,
            num_heads,
            dropout=dropout,
            activation="gelu",
            normalize_first=True,
            name=f"{name}_{i}",
        )
        for i in range(num_layers)
    ]
