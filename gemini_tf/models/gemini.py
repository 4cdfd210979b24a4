"""`GeminiModel`: text encoder + image encoder + fusion + task head, one functional model.

Built like keras-hub's `CLIPBackbone`: the sub-encoders and the fusion are passed
in, the functional graph is wired in `__init__`, and `get_config` serializes the
parts. Inputs are `[token_ids, images]` so the plain Keras workflow
`model.fit([token_ids, images], labels)` works as written.
"""

from __future__ import annotations

import keras

from gemini_tf.config import GeminiConfig
from gemini_tf.models.fusion import fusion_layer
from gemini_tf.models.heads import task_head
from gemini_tf.models.image_encoder import ImageEncoder
from gemini_tf.models.text_encoder import TextEncoder


@keras.saving.register_keras_serializable(package="gemini_tf")
class GeminiModel(keras.Model):
    """Image-text model: P(match) or P(class) for each (text, image) pair.

    Example:
    ```python
    model = gemini_tf.gemini_model("tiny", vocabulary_size=200)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit([token_ids, images], labels, epochs=10, batch_size=32)
    ```
    """

    def __init__(self, text_encoder, image_encoder, fusion, head, **kwargs):
        # === Layers ===
        self.text_encoder = text_encoder
        self.image_encoder = image_encoder
        self.fusion = fusion
        self.head = head

        # === Functional Model ===
        token_ids = keras.Input(shape=(text_encoder.sequence_length,), dtype="int32", name="token_ids")
        images = keras.Input(shape=(*image_encoder.image_size, 3), name="images")
        text = text_encoder(token_ids)
        image = image_encoder(images)
        fused = fusion(
            text["sequence"],
            keras.ops.not_equal(token_ids, 0),
            image["sequence"],
            text["pooled"],
            image["pooled"],
        )
        super().__init__(inputs=[token_ids, images], outputs=head(fused), **kwargs)

    @property
    def task(self) -> str:
        return self.head.name

    def text_embeddings(self, token_ids):
        """Pooled text vectors [batch, hidden_dim] from the text encoder alone."""
        return self.text_encoder(token_ids)["pooled"]

    def image_embeddings(self, images):
        """Pooled image vectors [batch, hidden_dim] from the image encoder alone."""
        return self.image_encoder(images)["pooled"]

    def cross_attention_maps(self, token_ids, images):
        """First cross-attention block's weights [batch, heads, text_len, grid_h * grid_w]."""
        if not hasattr(self.fusion, "attention_maps"):
            raise ValueError(f"Fusion {self.fusion.__class__.__name__} has no cross-attention.")
        return self.fusion.attention_maps(
            self.text_encoder(token_ids)["sequence"],
            keras.ops.not_equal(token_ids, 0),
            self.image_encoder(images)["sequence"],
        )

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "text_encoder": keras.layers.serialize(self.text_encoder),
            "image_encoder": keras.layers.serialize(self.image_encoder),
            "fusion": keras.layers.serialize(self.fusion),
            "head": keras.layers.serialize(self.head),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for part in ("text_encoder", "image_encoder", "fusion", "head"):
            config[part] = keras.layers.deserialize(config[part], custom_objects=custom_objects)
        return cls(**config)


def gemini_model(
    preset: str | GeminiConfig = "tiny",
    vocabulary_size: int | None = None,
    **overrides,
) -> GeminiModel:
    """Builds a `GeminiModel` from a preset name (or a `GeminiConfig`) plus overrides.

    `vocabulary_size` should be `len(vocabulary)` of the `TextPreprocessor` used.
    """
    if vocabulary_size is not None:
        overrides["vocabulary_size"] = vocabulary_size
    if isinstance(preset, GeminiConfig):
        config = GeminiConfig.from_dict({**preset.to_dict(), **overrides})
    else:
        config = GeminiConfig.from_preset(preset, **overrides)
    text_encoder = TextEncoder(
        config.vocabulary_size, config.sequence_length, config.hidden_dim, config.text_layers,
        config.num_heads, config.intermediate_dim, config.dropout, name="text_encoder",
    )
    image_encoder = ImageEncoder(
        config.image_size, config.stem_channels, config.hidden_dim, config.image_layers,
        config.num_heads, config.intermediate_dim, config.dropout, name="image_encoder",
    )
    fusion = fusion_layer(
        config.fusion, config.hidden_dim, config.fusion_layers, config.num_heads,
        config.intermediate_dim, config.dropout,
    )
    return GeminiModel(
        text_encoder, image_encoder, fusion, task_head(config.task, config.num_classes),
        name=f"gemini_{config.fusion}",
    )
