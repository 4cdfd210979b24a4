"""`ContrastiveTrainer`: ALBEF-style joint training, L = L_itc + L_itm, in plain `fit`.

The dataset yields `(token_ids, images, image_ids)` and no labels. Each step:

1. Align (ITC): the model's projections embed the pooled text and image states,
   and its `ContrastiveHead` applies the InfoNCE or sigmoid loss.
2. Mine: for every image, a negative caption from the batch drawn with
   probability softmax(similarity), its own captions excluded; for every caption
   a negative image likewise (`sample_hard_negatives`).
3. Match (ITM): the model's fusion + head score the B positives and 2B mined
   negatives (1 : 2). The loss is class-balanced binary cross-entropy (so
   sigmoid > 0.5 is a balanced decision) plus a pairwise ranking term
   softplus(negative - positive) for each positive and its two negatives.
   The ranking term is what gets a from-scratch fusion head off the ground:
   with binary cross-entropy alone it settles on the 1 : 2 prior and stays.

Two ALBEF options for noisy photo captions (issue #13):

* ITM warm-up (`itm_warmup_steps`): the ITM weight is 0 until ITC has trained
  that many steps, then `itm_weight`: negatives mined from an untrained ITC
  are random ones, and teach the fusion nothing about hard cases.
* Momentum distillation (`momentum`): a `MomentumEncoder` (EMA copy of the
  encoders, no gradients) gives soft in-batch targets; ITC becomes
  (1 - α) * ITC + α * KD(momentum similarities || similarities), α = `distill_weight`.

Negatives and contrastive targets come from the replica's own batch: under
`MirroredStrategy` with global batch G on R replicas, each replica contrasts
and mines among its G / R rows (no cross-replica gather).
"""

from __future__ import annotations

import keras
from keras import ops

from gemini_tf.models.contrastive import sample_hard_negatives
from gemini_tf.models.distillation import similarity_kd_loss
from gemini_tf.models.gemini import GeminiModel
from gemini_tf.models.momentum import MomentumEncoder


@keras.saving.register_keras_serializable(package="gemini_tf")
class ContrastiveTrainer(keras.Model):
    """Inputs: (token_ids [B, L], images [B, H, W, 3], image_ids [B]); trains with no labels.

    Args:
        gemini: the `GeminiModel` to train (its encoders, projections,
            contrastive head, fusion and ITM head).
        itm_weight: weight of the ITM loss (after the warm-up).
        seed: seed of the negative sampler.
        itm_warmup_steps: optimizer steps of ITC alone before the ITM loss counts (`itm_schedule`).
        momentum: EMA momentum of a `MomentumEncoder` for momentum distillation; None: off.
        distill_weight: α, the share of the momentum model's soft targets in ITC.

    Example:
    ```python
    trainer = ContrastiveTrainer(gemini_tf.gemini_model("small", vocabulary_size=2000))
    trainer.compile(optimizer="adamw")
    trainer.fit(dataset, epochs=5)   # dataset of (token_ids, images, image_ids)
    ```
    """

    def __init__(
        self,
        gemini: GeminiModel,
        itm_weight: float = 1.0,
        seed: int | None = None,
        itm_warmup_steps: int = 0,
        momentum: float | None = None,
        distill_weight: float = 0.4,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if itm_warmup_steps < 0:
            raise ValueError(f"itm_warmup_steps must be at least 0, got {itm_warmup_steps}.")
        check_distill_weight(distill_weight)
        self.gemini = gemini
        gemini.contrastive_head.trainable = True  # its scale (and bias) train under the contrastive term
        self.itm_weight = itm_weight
        self.seed = seed
        self.itm_warmup_steps = itm_warmup_steps
        self.momentum = momentum
        self.distill_weight = distill_weight
        self.momentum_encoder = None if momentum is None else MomentumEncoder(gemini, momentum, name="momentum")
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.itc_loss_tracker = keras.metrics.Mean(name="itc_loss")
        self.itm_loss_tracker = keras.metrics.Mean(name="itm_loss")
        # Balanced (mean of accuracy on positives and on negatives): at 1 : 2,
        # answering "no" always would score 67 % plain accuracy but 50 % here.
        self.itm_accuracy_tracker = keras.metrics.Mean(name="itm_accuracy")
        self.built = True  # every weight is `gemini`'s, and `gemini` is built

    def call(self, inputs, training=None):
        token_ids, images, image_ids = inputs
        image_ids = ops.reshape(image_ids, (-1,))
        text = self.gemini.text_encoder(token_ids, training=training)
        image = self.gemini.image_encoder(images, training=training)
        similarity = self.gemini.similarities(text["pooled"], image["pooled"])
        logits = self.gemini.contrastive_head(similarity)
        negative_text = sample_hard_negatives(logits, image_ids, self.seed_generator)
        negative_image = sample_hard_negatives(ops.transpose(logits), image_ids, self.seed_generator)
        itm_text, itm_token_ids, itm_image, itm_labels = matching_rows(
            text, token_ids, image, image_ids, negative_text, negative_image
        )
        itm_logits = self.gemini.match_logits(itm_text, itm_token_ids, itm_image, training=training)
        outputs = {"similarity": similarity, "image_ids": image_ids, "itm_logits": itm_logits, "itm_labels": itm_labels}
        if self.momentum_encoder is not None:
            outputs["momentum_similarity"] = self.momentum_encoder.similarities(token_ids, images)
        return outputs

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        head, image_ids = self.gemini.contrastive_head, y_pred["image_ids"]
        itc = head.contrastive_loss(y_pred["similarity"], image_ids)
        if self.momentum_encoder is not None:
            soft = similarity_kd_loss(head(y_pred["momentum_similarity"]), head(y_pred["similarity"]), image_ids)
            itc = (1.0 - self.distill_weight) * itc + self.distill_weight * soft
        labels, logits = y_pred["itm_labels"], y_pred["itm_logits"]
        itm = itm_loss(labels, logits)
        self.itc_loss_tracker.update_state(itc)
        self.itm_loss_tracker.update_state(itm)
        self.itm_accuracy_tracker.update_state(balanced_accuracy(labels, logits))
        step = self.optimizer.iterations if training and self.optimizer is not None else self.itm_warmup_steps
        return itc + self.itm_weight * itm_schedule(step, self.itm_warmup_steps) * itm

    def train_step(self, data):
        logs = super().train_step(data)
        if self.momentum_encoder is not None:
            self.momentum_encoder.update(self.gemini)
        return logs

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return self.get_metrics_result()

    @property
    def metrics(self):
        return [*super().metrics, self.itc_loss_tracker, self.itm_loss_tracker, self.itm_accuracy_tracker]

    def get_config(self):
        return {
            **super().get_config(),
            "gemini": keras.layers.serialize(self.gemini),
            "itm_weight": self.itm_weight,
            "seed": self.seed,
            "itm_warmup_steps": self.itm_warmup_steps,
            "momentum": self.momentum,
            "distill_weight": self.distill_weight,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["gemini"] = keras.layers.deserialize(config["gemini"], custom_objects=custom_objects)
        return cls(**config)


def check_distill_weight(distill_weight: float) -> None:
    """ValueError unless α = `distill_weight` is in [0, 1]."""
    if not 0.0 <= distill_weight <= 1.0:
        raise ValueError(f"distill_weight must be in [0, 1], got {distill_weight}.")


def itm_schedule(step, warmup_steps: int):
    """The ITM loss weight at optimizer step `step`: 0 during the first `warmup_steps`, then 1."""
    return ops.cast(ops.greater_equal(step, warmup_steps), "float32")


def matching_rows(text: dict, token_ids, image: dict, image_ids, negative_text, negative_image):
    """The ITM pairs of a caption batch and their labels, from encoder outputs and mined indices.

    Rows: B positives, B (mined negative caption, image), B (caption, mined negative image).
    Returns (text, token_ids, image, labels) of the 3B pairs; a mined "negative" that shows the
    same image (possible only when one image fills the batch) is labelled 1.
    """
    take = lambda tree, index: {k: ops.take(v, index, axis=0) for k, v in tree.items()}  # noqa: E731
    both = lambda a, b: {k: ops.concatenate([a[k], b[k]], axis=0) for k in a}  # noqa: E731
    rows_text = both(both(text, take(text, negative_text)), text)
    rows_token_ids = ops.concatenate([token_ids, ops.take(token_ids, negative_text, axis=0), token_ids], 0)
    rows_image = both(both(image, image), take(image, negative_image))
    labels = ops.concatenate(
        [
            ops.ones_like(image_ids, dtype="bool"),
            ops.equal(image_ids, ops.take(image_ids, negative_text)),
            ops.equal(image_ids, ops.take(image_ids, negative_image)),
        ],
        0,
    )
    return rows_text, rows_token_ids, rows_image, ops.cast(labels, "float32")


def itm_loss(labels, logits):
    """Class-balanced BCE + pairwise ranking, for logits laid out as
    [B positives, B (negative caption, image), B (caption, negative image)].

    A mined "negative" that shows the same image (possible only when one image
    fills the batch) has label 1 and is left out of the ranking term.
    """
    positives = ops.sum(labels)
    weights = ops.where(labels > 0, 0.5 / positives, 0.5 / (ops.cast(ops.size(labels), labels.dtype) - positives))
    bce = keras.losses.binary_crossentropy(labels[:, None], logits[:, None], from_logits=True)
    balanced = ops.sum(weights * bce)
    grouped, grouped_labels = ops.reshape(logits, (3, -1)), ops.reshape(labels, (3, -1))
    negative_labels = grouped_labels[1:]
    margin = ops.softplus(grouped[1:] - grouped[:1])
    ranking = ops.sum(margin * (1.0 - negative_labels)) / ops.maximum(ops.sum(1.0 - negative_labels), 1.0)
    return balanced + ranking


def balanced_accuracy(labels, logits):
    """Mean of the accuracy on positive and on negative pairs, deciding by logit > 0."""
    correct = ops.cast(ops.equal(ops.cast(logits > 0, labels.dtype), labels), labels.dtype)
    on_positives = ops.sum(correct * labels) / ops.maximum(ops.sum(labels), 1.0)
    on_negatives = ops.sum(correct * (1.0 - labels)) / ops.maximum(ops.sum(1.0 - labels), 1.0)
    return 0.5 * (on_positives + on_negatives)
