"""`ContrastiveHead`: the learnable scale (and bias) of image-text similarities, and their loss.

Like keras-hub's `CLIPHead` / `SigLIPHead`, the head owns the temperature of the
contrastive logits; here it also owns the loss that goes with them, so every
trainer (listwise, contrastive, distillation) and the CLIP peer compute ITC the
same way:

* "infonce": CLIP's symmetric softmax loss; scale starts at 1 / 0.07, no bias.
* "sigmoid": SigLIP's pairwise loss; scale 10 and bias -10 (big_vision from scratch).
"""

from __future__ import annotations

import math

import keras
from keras import ops

from gemini_tf.config import CONTRASTIVE_LOSSES
from gemini_tf.models.contrastive import infonce_loss, sigmoid_loss

INITIAL_SCALE_AND_BIAS = {"infonce": (1 / 0.07, 0.0), "sigmoid": (10.0, -10.0)}
MAX_SCALE = 100.0


@keras.saving.register_keras_serializable(package="gemini_tf")
class ContrastiveHead(keras.layers.Layer):
    """Cosine similarities -> contrastive logits, and the ITC loss on them.

    Args:
        loss: "infonce" or "sigmoid". The bias trains only for "sigmoid"
            (InfoNCE is shift-invariant).

    Computes in float32 unless given another `dtype`: similarities, logits and
    the loss stay float32 under a mixed precision policy.
    """

    def __init__(self, loss: str = "infonce", **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if loss not in CONTRASTIVE_LOSSES:
            raise ValueError(f"Unknown contrastive loss {loss!r}; choose one of {list(CONTRASTIVE_LOSSES)}.")
        self.loss_name = loss

    def build(self, similarity_shape=None):
        initial_scale, initial_bias = INITIAL_SCALE_AND_BIAS[self.loss_name]
        self.log_scale = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(math.log(initial_scale)), name="log_scale"
        )
        self.bias = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(initial_bias),
            name="bias",
            trainable=self.loss_name == "sigmoid",
        )
        self.built = True

    @property
    def scale(self):
        """exp(log_scale), capped at MAX_SCALE as in CLIP."""
        return ops.exp(ops.minimum(self.log_scale, math.log(MAX_SCALE)))

    def call(self, similarity):
        """Cosine similarities [images, texts] -> logits scale * similarity + bias."""
        return self.scale * similarity + self.bias

    def contrastive_loss(self, similarity, image_ids):
        """ITC loss of cosine similarities [batch images, batch texts]; `image_ids` marks same-image rows."""
        if self.loss_name == "infonce":
            return infonce_loss(similarity, image_ids, self.scale)
        return sigmoid_loss(similarity, image_ids, self.scale, self.bias)

    def get_config(self):
        return {**super().get_config(), "loss": self.loss_name}
