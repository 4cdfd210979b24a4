"""keras-hub CLIP trained from scratch with gemini_tf's contrastive loss: the retrieval peer.

`clip_matcher` builds `keras_hub.models.CLIPBackbone` from its own
`CLIPVisionEncoder` and `CLIPTextEncoder`, choosing the number of layers whose
parameter count is closest to a given Gemini model. `ClipMatcher` trains it
with gemini_tf's own `ContrastiveHead` (the same scale and loss as every
gemini_tf trainer) and offers the same `embed_texts` / `embed_images` / `scale`,
so `gemini_tf.retrieval` evaluates both identically.
"""

from __future__ import annotations

import keras
import keras_hub
from keras import ops

from gemini_tf.config import GeminiConfig
from gemini_tf.models.contrastive_head import ContrastiveHead


@keras.saving.register_keras_serializable(package="gemini_tf")
class ClipMatcher(keras.Model):
    """Inputs: (token_ids, images, image_ids) with gemini_tf token ids; trains with no labels.

    CLIP pools text at the highest token id (its end token), so [SEP] is
    remapped to one id past the vocabulary before the text encoder sees it.
    """

    def __init__(self, backbone: keras_hub.models.CLIPBackbone, sep_id: int, loss: str = "infonce", **kwargs):
        super().__init__(**kwargs)
        self.contrastive_head = ContrastiveHead(loss, name="contrastive_head")
        self.contrastive_head.build()
        self.backbone = backbone
        # The backbone's own CLIPHead scale is replaced by the shared head's: keep it out of training.
        self.backbone.clip_head.trainable = False
        self.sep_id = sep_id
        self.loss_name = loss
        self.itc_loss_tracker = keras.metrics.Mean(name="itc_loss")

    @property
    def scale(self):
        return self.contrastive_head.scale

    def embed_texts(self, token_ids, training=None):
        end_id = self.backbone.text_encoder.vocabulary_size - 1
        token_ids = ops.where(ops.equal(token_ids, self.sep_id), end_id, token_ids)
        return ops.normalize(self.backbone.get_text_embeddings(token_ids), axis=-1)

    def embed_images(self, images, training=None):
        return ops.normalize(self.backbone.get_vision_embeddings(images), axis=-1)

    def call(self, inputs, training=None):
        token_ids, images, image_ids = inputs
        similarity = ops.matmul(self.embed_images(images), ops.transpose(self.embed_texts(token_ids)))
        return {"similarity": similarity, "image_ids": ops.reshape(image_ids, (-1,))}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = self.contrastive_head.contrastive_loss(y_pred["similarity"], y_pred["image_ids"])
        self.itc_loss_tracker.update_state(loss)
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return self.get_metrics_result()

    @property
    def metrics(self):
        return [*super().metrics, self.itc_loss_tracker]

    def get_config(self):
        return {
            **super().get_config(),
            "backbone": keras.layers.serialize(self.backbone),
            "sep_id": self.sep_id,
            "loss": self.loss_name,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"], custom_objects=custom_objects)
        return cls(**config)


def clip_backbone(
    config: GeminiConfig, num_layers: int, patch_size: int, embedding_dim: int
) -> keras_hub.models.CLIPBackbone:
    """CLIP with Gemini's widths; +1 vocabulary entry for the remapped end token."""
    vision = keras_hub.models.CLIPVisionEncoder(
        patch_size=patch_size,
        hidden_dim=config.hidden_dim,
        num_layers=num_layers,
        num_heads=config.num_heads,
        intermediate_dim=config.intermediate_dim,
        image_shape=(*config.image_size, 3),
    )
    text = keras_hub.models.CLIPTextEncoder(
        vocabulary_size=config.vocabulary_size + 1,
        embedding_dim=config.hidden_dim,
        hidden_dim=config.hidden_dim,
        num_layers=num_layers,
        num_heads=config.num_heads,
        intermediate_dim=config.intermediate_dim,
        max_sequence_length=config.sequence_length,
    )
    return keras_hub.models.CLIPBackbone(vision, text, projection_dim=embedding_dim)


def clip_matcher(
    config: GeminiConfig,
    target_parameters: int,
    sep_id: int,
    embedding_dim: int = 128,
    patch_size: int | None = None,
    loss: str = "infonce",
) -> ClipMatcher:
    """The `ClipMatcher` whose layer count (1-8 per tower) gives the parameter count
    closest to `target_parameters` (e.g. a Gemini model's `count_params()`)."""
    patch_size = patch_size or config.patch_size
    best = min(
        range(1, 9),
        key=lambda n: abs(clip_backbone(config, n, patch_size, embedding_dim).count_params() - target_parameters),
    )
    return ClipMatcher(clip_backbone(config, best, patch_size, embedding_dim), sep_id, loss)
