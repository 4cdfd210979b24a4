"""`ListwiseTrainer`: trains a `GeminiModel` to rank an image's true caption above its rivals.

Binary ITM from scratch stalls on Shapes: the model learns colour (a global
pixel statistic), then nothing else, because one bit per pair says little about
*which* word was wrong. Here each image comes with a group of captions — the true
one and rivals that differ from it in exactly one thing — and the matching
logits of the group compete in a softmax, so the gradient points at the one
word that differs. A class-balanced binary term on the same logits keeps the
sigmoid calibrated, so the trained `GeminiModel` answers "match?" on its own,
and the model's `ContrastiveHead` aligns pooled image and true-caption
embeddings (ALBEF's "align before fuse"). The image is encoded once per group.
Under `MirroredStrategy` each replica contrasts its own share of the batch.
"""

from __future__ import annotations

import keras
from keras import ops

from gemini_tf.models.gemini import GeminiModel


@keras.saving.register_keras_serializable(package="gemini_tf")
class ListwiseTrainer(keras.Model):
    """Inputs: (token_ids [batch, group, length], images [batch, H, W, 3]); labels [batch, group].

    The true caption is at index 0 of each group (labels 1, 0, 0, ...). Shares
    every weight with `gemini`, which is what you save and deploy.

    Args:
        gemini: the `GeminiModel` to train.
        itc_weight: weight of the contrastive alignment term (0 turns it off).
    """

    def __init__(self, gemini: GeminiModel, itc_weight: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.gemini = gemini
        if itc_weight:
            gemini.contrastive_head.trainable = True  # its scale (and bias) train under the contrastive term
        self.itc_weight = itc_weight
        self.itc_loss_tracker = keras.metrics.Mean(name="itc_loss")
        self.group_accuracy_tracker = keras.metrics.Mean(name="group_accuracy")
        self.pair_accuracy_tracker = keras.metrics.Mean(name="pair_accuracy")
        self.built = True  # every weight is `gemini`'s, and `gemini` is built

    def call(self, inputs, training=None):
        token_ids, images = inputs
        batch, group, length = ops.shape(token_ids)[0], ops.shape(token_ids)[1], ops.shape(token_ids)[2]
        token_ids = ops.reshape(token_ids, (batch * group, length))
        text = self.gemini.text_encoder(token_ids, training=training)
        image = self.gemini.image_encoder(images, training=training)
        repeated = {k: ops.repeat(v, group, axis=0) for k, v in image.items()}
        logits = ops.reshape(self.gemini.match_logits(text, token_ids, repeated, training=training), (batch, group))
        similarity = self.gemini.similarities(text["pooled"][::group], image["pooled"])
        return {"logits": logits, "similarity": similarity}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        logits, labels = y_pred["logits"], ops.cast(y, y_pred["logits"].dtype)
        loss = ops.mean(group_matching_loss(labels, logits))
        self.group_accuracy_tracker.update_state(group_accuracy(labels, logits))
        self.pair_accuracy_tracker.update_state(pair_accuracy(labels, logits))
        if self.itc_weight:
            similarity = y_pred["similarity"]
            itc = self.gemini.contrastive_head.contrastive_loss(similarity, ops.arange(ops.shape(similarity)[0]))
            self.itc_loss_tracker.update_state(itc)
            loss = loss + self.itc_weight * itc
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return self.get_metrics_result()

    @property
    def metrics(self):
        trackers = [self.group_accuracy_tracker, self.pair_accuracy_tracker]
        return [*super().metrics, *trackers, *([self.itc_loss_tracker] if self.itc_weight else [])]

    def get_config(self):
        return {**super().get_config(), "gemini": keras.layers.serialize(self.gemini), "itc_weight": self.itc_weight}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["gemini"] = keras.layers.deserialize(config["gemini"], custom_objects=custom_objects)
        return cls(**config)


@keras.saving.register_keras_serializable(package="gemini_tf")
class ImageListwiseTrainer(keras.Model):
    """The transpose of `ListwiseTrainer`: one text against a group of images, the image it is
    true of first. Inputs: (token_ids [batch, length], images [batch, group, H, W, 3]); labels
    [batch, group] (1, 0, ...).

    Labelled pairs let a model score well by judging the sentence alone (NLVR: which sentences
    tend to be true); when the same sentence is true of one image and false of another, only
    looking tells them apart. Same loss as `ListwiseTrainer` (softmax over the group +
    class-balanced binary cross-entropy), so P(true) stays calibrated on its own.

    Args:
        gemini: the `GeminiModel` to train (every weight is shared).
    """

    def __init__(self, gemini: GeminiModel, **kwargs):
        super().__init__(**kwargs)
        self.gemini = gemini
        self.group_accuracy_tracker = keras.metrics.Mean(name="group_accuracy")
        self.pair_accuracy_tracker = keras.metrics.Mean(name="pair_accuracy")
        self.built = True

    def call(self, inputs, training=None):
        token_ids, images = inputs
        batch, group = ops.shape(images)[0], ops.shape(images)[1]
        image = self.gemini.image_encoder(ops.reshape(images, (-1, *ops.shape(images)[2:])), training=training)
        text = self.gemini.text_encoder(token_ids, training=training)
        repeated = {k: ops.repeat(v, group, axis=0) for k, v in text.items()}
        token_ids = ops.repeat(token_ids, group, axis=0)
        return ops.reshape(self.gemini.match_logits(repeated, token_ids, image, training=training), (batch, group))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        labels = ops.cast(y, y_pred.dtype)
        self.group_accuracy_tracker.update_state(group_accuracy(labels, y_pred))
        self.pair_accuracy_tracker.update_state(pair_accuracy(labels, y_pred))
        return ops.mean(group_matching_loss(labels, y_pred))

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return self.get_metrics_result()

    @property
    def metrics(self):
        return [*super().metrics, self.group_accuracy_tracker, self.pair_accuracy_tracker]

    def get_config(self):
        return {**super().get_config(), "gemini": keras.layers.serialize(self.gemini)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["gemini"] = keras.layers.deserialize(config["gemini"], custom_objects=custom_objects)
        return cls(**config)


def group_matching_loss(labels, logits):
    """Softmax cross-entropy over each group + class-balanced binary cross-entropy, per group.

    labels [batch, group]: 1 for the true caption (index 0), 0 for the rivals.
    """
    listwise = keras.losses.categorical_crossentropy(labels, logits, from_logits=True)
    # Weigh the one positive as much as all negatives together, so that
    # sigmoid(logit) > 0.5 is a balanced match / no-match decision.
    group = ops.cast(ops.shape(labels)[-1], logits.dtype)
    weights = labels * (group - 2.0) + 1.0
    bce = keras.losses.binary_crossentropy(labels[..., None], logits[..., None], from_logits=True)
    pointwise = ops.sum(weights * bce, axis=-1) / ops.sum(weights, axis=-1)
    return listwise + pointwise


def group_accuracy(labels, logits):
    """Share of groups whose true caption has the highest logit."""
    return ops.mean(ops.cast(ops.equal(ops.argmax(logits, -1), ops.argmax(labels, -1)), "float32"))


def pair_accuracy(labels, logits):
    """Share of captions classified right by sigmoid(logit) > 0.5."""
    predictions = ops.cast(logits > 0, labels.dtype)
    return ops.mean(ops.cast(ops.equal(predictions, labels), "float32"))
