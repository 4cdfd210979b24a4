"""Conv-plus-attention image encoder: images -> patch states and a pooled vector.

A convolutional stem (stride-2 Conv2D -> LayerNorm -> GELU per stage) turns the
image into a grid of patch tokens, so each token already sees local shape and
colour; learned 2-D position embeddings (one per grid cell) then let
self-attention blocks relate patches to each other (the CoAtNet / compact
convolutional transformer family).

Two options serve small labelled datasets trained with plain `fit`:
`stem_norm="batch"` (BatchNormalization in the stem: the conv features learn
much faster than under LayerNorm) and `train_shift` (a random
translation of every training image, identity at inference: the model cannot
memorise where each training object sat, and relations between objects do not
change when the whole picture moves).
"""

from __future__ import annotations

import keras
import keras_hub

from gemini_tf.layers.encoder_blocks import scaled_encoder_blocks
from gemini_tf.layers.training_shift import TrainingShift

STEM_NORMS = {
    "layer": lambda name: keras.layers.LayerNormalization(epsilon=1e-5, name=name),
    # momentum 0.9: the moving statistics keep up with fast-learning convolutions, so inference
    # scores match training (at Keras' 0.99 they lag, and accuracy swings from epoch to epoch).
    "batch": lambda name: keras.layers.BatchNormalization(momentum=0.9, name=name),
}


def check_stem_norm(stem_norm: str) -> None:
    """A clear error for a stem normalisation that `STEM_NORMS` does not have."""
    if stem_norm not in STEM_NORMS:
        raise ValueError(f"Unknown stem_norm {stem_norm!r}; choose one of {list(STEM_NORMS)}.")


@keras.saving.register_keras_serializable(package="gemini_tf")
class ImageEncoder(keras.Model):
    """Input: float32 images [batch, height, width, 3] in [0, 1].

    Outputs: {"sequence": [batch, grid_h * grid_w, hidden_dim],
              "pooled": [batch, hidden_dim]} (mean over patches).
    The stem has len(stem_channels) + 1 stages, so patch size = 2 ** stages.

    Args:
        image_size: (height, width) of the input images.
        stem_channels: widths of the stem stages before the last (which is hidden_dim wide).
        hidden_dim: width of the patch states.
        num_layers, num_heads, intermediate_dim: the self-attention blocks.
        dropout: dropout rate in the blocks.
        stem_norm: "layer" or "batch", the normalisation after each stem convolution.
        train_shift: largest random translation of training images, as a fraction of their
            height and width (0: none); borders fill with black.
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
        stem_norm: str = "layer",
        train_shift: float = 0.0,
        **kwargs,
    ):
        check_stem_norm(stem_norm)
        image_size = tuple(image_size)
        stem_channels = tuple(stem_channels)
        patch_size = 2 ** (len(stem_channels) + 1)
        grid = (image_size[0] // patch_size, image_size[1] // patch_size)

        # === Layers ===
        stem = []
        for i, channels in enumerate(stem_channels + (hidden_dim,)):
            stem += [
                keras.layers.Conv2D(channels, 3, strides=2, padding="same", name=f"stem_conv_{i}"),
                STEM_NORMS[stem_norm](name=f"stem_norm_{i}"),
                keras.layers.Activation("gelu", name=f"stem_gelu_{i}"),
            ]
        to_tokens = keras.layers.Reshape((grid[0] * grid[1], hidden_dim), name="patch_tokens")
        positions = keras_hub.layers.PositionEmbedding(grid[0] * grid[1], name="position_2d")
        blocks = scaled_encoder_blocks(num_layers, num_heads, intermediate_dim, dropout)
        final_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")

        # === Functional Model ===
        images = keras.Input(shape=(*image_size, 3), name="images")
        x = images
        if train_shift:
            x = TrainingShift(train_shift, train_shift, fill_mode="constant", name="train_shift")(x)
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
        self.stem_norm = stem_norm
        self.train_shift = train_shift
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
            "stem_norm": self.stem_norm,
            "train_shift": self.train_shift,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
