"""`GroupMatcher`: trains a `GeminiModel`'s ITM head listwise on caption groups.

Binary ITM from scratch stalls on Shapes: the model learns colour (a global
pixel statistic), then nothing else, because one bit per pair says little about
*which* word was wrong. Here each image comes with a group of captions — the true
one and negatives that differ from it in exactly one thing — and the matching
logits of the group compete in a softmax. The gradient then points at the one
word that differs. A binary cross-entropy term on the same logits keeps the
sigmoid calibrated, so the trained `GeminiModel` answers "match?" on its own.
The image is encoded once per group, so a step costs little more than K text
passes. Under `MirroredStrategy` each replica contrasts the images and captions
of its own share of the batch (negatives are per replica, not global).
"""

from __future__ import annotations

import keras
from keras import ops

from gemini_tf.models.gemini import GeminiModel


@keras.saving.register_keras_serializable(package="gemini_tf")
class GroupMatcher(keras.Model):
    """Inputs: (token_ids [batch, group, length], images [batch, H, W, 3]).

    Output: matching logits [batch, group]; target index 0 is the true caption.
    Shares every weight with `gemini`, which is what you save and deploy.
    """

    def __init__(self, gemini: GeminiModel, itc_weight: float = 1.0, embedding_dim: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.gemini = gemini
        self.itc_weight = itc_weight
        self.embedding_dim = embedding_dim
        self.text_projection = keras.layers.Dense(embedding_dim, name="text_projection")
        self.image_projection = keras.layers.Dense(embedding_dim, name="image_projection")
        self.log_scale = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(2.659), name="log_scale"
        )
        self.itc_loss_tracker = keras.metrics.Mean(name="itc_loss")
        self._itc_logits = None

    def call(self, inputs, training=None):
        token_ids, images = inputs
        batch, group, length = ops.shape(token_ids)[0], ops.shape(token_ids)[1], ops.shape(token_ids)[2]
        token_ids = ops.reshape(token_ids, (batch * group, length))
        image = self.gemini.image_encoder(images, training=training)
        text = self.gemini.text_encoder(token_ids, training=training)
        repeat = lambda x: ops.repeat(x, group, axis=0)  # noqa: E731
        fused = self.gemini.fusion(
            text["sequence"], ops.not_equal(token_ids, 0), repeat(image["sequence"]),
            text["pooled"], repeat(image["pooled"]), training=training,
        )
        # Align before fuse (ALBEF): contrast pooled image vs its true caption.
        text_embedding = ops.normalize(self.text_projection(text["pooled"][::group]), axis=-1)
        image_embedding = ops.normalize(self.image_projection(image["pooled"]), axis=-1)
        scale = ops.exp(ops.minimum(self.log_scale, 4.6))
        self._itc_logits = scale * ops.matmul(image_embedding, ops.transpose(text_embedding))
        head = self.gemini.head
        logits = ops.matmul(fused, head.kernel) + head.bias
        return ops.reshape(logits, (batch, group))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training)
        if self.itc_weight and self._itc_logits is not None:
            targets = ops.arange(ops.shape(self._itc_logits)[0])
            itc = 0.5 * (
                keras.losses.sparse_categorical_crossentropy(targets, self._itc_logits, from_logits=True)
                + keras.losses.sparse_categorical_crossentropy(
                    targets, ops.transpose(self._itc_logits), from_logits=True)
            )
            itc = ops.mean(itc)
            self.itc_loss_tracker.update_state(itc)
            loss = loss + self.itc_weight * itc
        return loss

    def get_config(self):
        return {
            **super().get_config(),
            "gemini": keras.layers.serialize(self.gemini),
            "itc_weight": self.itc_weight,
            "embedding_dim": self.embedding_dim,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["gemini"] = keras.layers.deserialize(config["gemini"], custom_objects=custom_objects)
        return cls(**config)


@keras.saving.register_keras_serializable(package="gemini_tf")
def group_matching_loss(labels, logits):
    """Softmax cross-entropy over each group + class-balanced binary cross-entropy.

    labels [batch, group]: 1 for the true caption (index 0), 0 for negatives.
    """
    labels = ops.cast(labels, logits.dtype)
    listwise = keras.losses.categorical_crossentropy(labels, logits, from_logits=True)
    # Weigh the one positive as much as all negatives together, so that
    # sigmoid(logit) > 0.5 is a balanced match / no-match decision.
    group = ops.cast(ops.shape(labels)[-1], logits.dtype)
    weights = labels * (group - 2.0) + 1.0
    bce = keras.losses.binary_crossentropy(labels[..., None], logits[..., None], from_logits=True)
    pointwise = ops.sum(weights * bce, axis=-1) / ops.sum(weights, axis=-1)
    return listwise + pointwise


@keras.saving.register_keras_serializable(package="gemini_tf")
def group_accuracy(labels, logits):
    """Fraction of groups whose true caption has the highest logit."""
    return ops.cast(ops.equal(ops.argmax(logits, -1), ops.argmax(labels, -1)), "float32")


@keras.saving.register_keras_serializable(package="gemini_tf")
def pair_accuracy(labels, logits):
    """Fraction of captions classified right by sigmoid(logit) > 0.5."""
    predictions = ops.cast(logits > 0, "float32")
    return ops.mean(ops.cast(ops.equal(predictions, ops.cast(labels, "float32")), "float32"), -1)
