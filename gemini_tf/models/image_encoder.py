"""Conv-plus-attention image encoder: images -> patch states and a pooled vector.

A convolutional stem (stride-2 Conv2D -> LayerNorm -> GELU per stage) turns the
image into a grid of patch tokens, so each token already sees local shape and
colour; learned 2-D position embeddings (one per grid cell) then let
self-attention blocks relate patches to each other (the CoAtNet / compact
convolutional transformer family).
"""

from __future__ import annotations

import keras
import keras_hub

from gemini_tf.layers.encoder_blocks import scaled_encoder_blocks


@keras.saving.register_keras_serializable(package="gemini_tf")
class ImageEncoder(keras.Model):
    """Input: float32 images [batch, height, width, 3] in [0, 1].

    Outputs: {"sequence": [batch, grid_h * grid_w, hidden_dim],
              "pooled": [batch, hidden_dim]} (mean over patches).
    The stem has len(stem_channels) + 1 stages, so patch size = 2 ** stages.
    """

    def __init__(
        self,
        image_size: tuple[int, int],
        stem_channels: tuple[int, ...],
        hidden_dim: int,
        num_layers: int,
        num_heads: int,
        intermediate_dim: int,
        dropout: float = 0.0,
        **kwargs,
    ):
        image_size = tuple(image_size)
        stem_channels = tuple(stem_channels)
        patch_size = 2 ** (len(stem_channels) + 1)
        grid = (image_size[0] // patch_size, image_size[1] // patch_size)

        # === Layers ===
        stem = []
        for i, channels in enumerate(stem_channels + (hidden_dim,)):
            stem += [
                keras.layers.Conv2D(channels, 3, strides=2, padding="same", name=f"stem_conv_{i}"),
                keras.layers.LayerNormalization(epsilon=1e-5, name=f"stem_norm_{i}"),
                keras.layers.Activation("gelu", name=f"stem_gelu_{i}"),
            ]
        to_tokens = keras.layers.Reshape((grid[0] * grid[1], hidden_dim), name="patch_tokens")
        positions = keras_hub.layers.PositionEmbedding(grid[0] * grid[1], name="position_2d")
        blocks = scaled_encoder_blocks(num_layers, num_heads, intermediate_dim, dropout)
        final_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")

        # === Functional Model ===
        images = keras.Input(shape=(*image_size, 3), name="images")
        x = images
        for layer in stem:
            x = layer(x)
        x = to_tokens(x)
        x = x + positions(x)
        for block, scale in blocks:
            x = scale(x, block(x))
        sequence = final_norm(x)
        pooled = keras.ops.mean(sequence, axis=1)
        super().__init__(inputs=images, outputs={"sequence": sequence, "pooled": pooled}, **kwargs)

        # === Config ===
        self.image_size = image_size
        self.stem_channels = stem_channels
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.grid_size = grid

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "image_size": list(self.image_size),
            "stem_channels": list(self.stem_channels),
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
