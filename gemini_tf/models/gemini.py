"""`GeminiModel`: text encoder + image encoder + fusion + task head, one functional model.

Built like keras-hub's `CLIPBackbone`: the sub-encoders and the fusion are passed
in, the functional graph is wired in `__init__`, and `get_config` serializes the
parts. Inputs are `[token_ids, images]` so the plain Keras workflow
`model.fit([token_ids, images], labels)` works as written.

The pooled text and image states are also projected to a shared embedding
space. Normalised, the projections are the retrieval embeddings (`embed_texts`,
`embed_images`, scaled by the `ContrastiveHead` under a contrastive loss);
their raw dot product is a second input of the task head beside the fused
vector. That bilinear term is what lets plain binary cross-entropy get off the
ground: its gradient is first-order in "this word goes with these pixels",
where an MLP over concatenated or normalised features sits at chance.
`match_logits` scores encoder outputs for the trainers and re-ranking.
"""

from __future__ import annotations

import keras
from keras import ops

from gemini_tf.config import GeminiConfig
from gemini_tf.models.contrastive_head import ContrastiveHead
from gemini_tf.models.fusion import ConcatFusion, CrossAttentionFusion
from gemini_tf.models.grounded_fusion import GroundedFusion
from gemini_tf.models.heads import MatchHead
from gemini_tf.models.image_encoder import ImageEncoder
from gemini_tf.models.text_encoder import TextEncoder

# The model's parts, each a layer attribute of `GeminiModel`: what pre-trained bundles hand on.
MODEL_PARTS = (
    "text_encoder",
    "image_encoder",
    "fusion",
    "head",
    "text_projection",
    "image_projection",
    "contrastive_head",
)


@keras.saving.register_keras_serializable(package="gemini_tf")
class GeminiModel(keras.Model):
    """Image-text model: P(match) or P(true) for each (text, image) pair.

    Args:
        text_encoder: a `TextEncoder`.
        image_encoder: an `ImageEncoder`.
        fusion: a fusion layer (`fusion_layer`).
        head: the task head (`MatchHead` named "itm" or "classify").
        embedding_dim: width of the retrieval embeddings.
        contrastive_loss: "infonce" or "sigmoid", the `ContrastiveHead`'s loss.

    Example:
    ```python
    model = gemini_tf.gemini_model("tiny", vocabulary_size=200)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit([token_ids, images], labels, epochs=10, batch_size=32)
    ```
    """

    def __init__(
        self,
        text_encoder,
        image_encoder,
        fusion,
        head,
        embedding_dim: int = 64,
        contrastive_loss: str = "infonce",
        **kwargs,
    ):
        # === Layers ===
        self.embedding_dim = embedding_dim
        self.text_encoder = text_encoder
        self.image_encoder = image_encoder
        self.fusion = fusion
        self.head = head
        # float32 under any policy: retrieval embeddings and their similarities stay float32.
        self.text_projection = keras.layers.Dense(embedding_dim, name="text_projection", dtype="float32")
        self.image_projection = keras.layers.Dense(embedding_dim, name="image_projection", dtype="float32")
        # Trains only under a contrastive loss: the listwise and contrastive trainers switch it on.
        self.contrastive_head = ContrastiveHead(contrastive_loss, trainable=False, name="contrastive_head")
        self.contrastive_head.build()  # outside the graph, so built here (trainers need every weight up front)

        # === Functional Model ===
        token_ids = keras.Input(shape=(text_encoder.sequence_length,), dtype="int32", name="token_ids")
        images = keras.Input(shape=(*image_encoder.image_size, 3), name="images")
        text = text_encoder(token_ids)
        image = image_encoder(images)
        outputs = head(*self._head_inputs(text, token_ids, image))
        super().__init__(inputs=[token_ids, images], outputs=outputs, **kwargs)

        # === Config ===
        self.contrastive_loss = contrastive_loss

    @property
    def task(self) -> str:
        return self.head.name

    def _head_inputs(self, text: dict, token_ids, image: dict, training=None):
        """What the task head reads: the fused vector, and [raw dot product of the projected pooled
        states, the fusion's own word-level score]."""
        fused, score = self.fusion(
            text["sequence"],
            ops.not_equal(token_ids, 0),
            image["sequence"],
            text["pooled"],
            image["pooled"],
            training=training,
        )
        similarity = ops.sum(self.text_projection(text["pooled"]) * self.image_projection(image["pooled"]), -1)
        return fused, ops.concatenate([similarity[:, None], ops.cast(score, similarity.dtype)], axis=-1)

    def match_logits(self, text: dict, token_ids, image: dict, training=None):
        """ITM logits [batch] of encoder outputs (the dicts `text_encoder` / `image_encoder` return)."""
        return self.head.logits(*self._head_inputs(text, token_ids, image, training))

    def project_text(self, pooled):
        """Pooled text states -> L2-normalised embeddings [batch, embedding_dim]."""
        return ops.normalize(self.text_projection(pooled), axis=-1)

    def project_image(self, pooled):
        """Pooled image states -> L2-normalised embeddings [batch, embedding_dim]."""
        return ops.normalize(self.image_projection(pooled), axis=-1)

    def similarities(self, text_pooled, image_pooled):
        """Cosine similarities [images, texts] of pooled states: what the contrastive head scales."""
        return ops.matmul(self.project_image(image_pooled), ops.transpose(self.project_text(text_pooled)))

    def embed_texts(self, token_ids, training=None):
        """Retrieval embeddings of texts (the text encoder alone)."""
        return self.project_text(self.text_encoder(token_ids, training=training)["pooled"])

    def embed_images(self, images, training=None):
        """Retrieval embeddings of images (the image encoder alone)."""
        return self.project_image(self.image_encoder(images, training=training)["pooled"])

    @property
    def scale(self):
        """The contrastive head's logit scale (retrieval adds scale x cosine to ITM logits)."""
        return self.contrastive_head.scale

    def attention_maps(self, token_ids, images):
        """Where each token looks: [batch, heads, text_len, grid_h * grid_w] from the fusion."""
        if not hasattr(self.fusion, "attention_maps"):
            raise ValueError(f"Fusion {self.fusion.__class__.__name__} has no attention over the image.")
        return self.fusion.attention_maps(
            self.text_encoder(token_ids)["sequence"],
            ops.not_equal(token_ids, 0),
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
            "embedding_dim": self.embedding_dim,
            "contrastive_loss": self.contrastive_loss,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for part in ("text_encoder", "image_encoder", "fusion", "head"):
            config[part] = keras.layers.deserialize(config[part], custom_objects=custom_objects)
        return cls(**config)


def text_encoder(config: GeminiConfig) -> TextEncoder:
    """The `TextEncoder` sized by `config`."""
    return TextEncoder(
        config.vocabulary_size,
        config.sequence_length,
        config.hidden_dim,
        config.text_layers,
        config.num_heads,
        config.intermediate_dim,
        config.dropout,
        name="text_encoder",
    )


def image_encoder(config: GeminiConfig) -> ImageEncoder:
    """The `ImageEncoder` sized by `config`."""
    return ImageEncoder(
        config.image_size,
        config.stem_channels,
        config.hidden_dim,
        config.image_layers,
        config.num_heads,
        config.intermediate_dim,
        config.dropout,
        config.stem_norm,
        config.train_shift,
        name="image_encoder",
    )


def fusion_layer(config: GeminiConfig) -> keras.layers.Layer:
    """The fusion `config.fusion` names ("concat", "cross_attention" or "grounded"), sized by `config`."""
    if config.fusion == "concat":
        return ConcatFusion(config.hidden_dim, config.dropout, name="fusion")
    sizes = (config.hidden_dim, config.fusion_layers, config.num_heads, config.intermediate_dim)
    if config.fusion == "cross_attention":
        return CrossAttentionFusion(*sizes, config.dropout, name="fusion")
    return GroundedFusion(
        *sizes, config.grid_size, config.dropout, config.phrase_evidence, config.phrase_relations, name="fusion"
    )


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
    return GeminiModel(
        text_encoder(config),
        image_encoder(config),
        fusion_layer(config),
        MatchHead(config.similarity_weight, name=config.task),
        embedding_dim=config.embedding_dim,
        contrastive_loss=config.contrastive_loss,
        name=f"gemini_{config.fusion}",
    )
