"""`MomentumEncoder`: a slowly-updated copy of a model's encoders, for momentum distillation.

ALBEF (Li et al. 2021) trains ITC against a mix of the one-hot targets and the
in-batch similarity distribution of a momentum model, an exponential moving
average (EMA) of the model itself: web captions are noisy, and a caption that
fits another photo of the batch as well as its own should not be pushed away
from it at full strength. MoCo's lesson applies too: the copy must move slowly
and never receive gradients.

After every optimizer step `update` moves each copied weight w_m towards the
model's weight w: w_m <- m * w_m + (1 - m) * w.
"""

from __future__ import annotations

import keras
from keras import ops

from gemini_tf.models.gemini import GeminiModel

# What the momentum copy needs to embed texts and images (fusion and heads are not copied).
MOMENTUM_PARTS = ("text_encoder", "image_encoder", "text_projection", "image_projection")


def check_momentum(momentum: float) -> None:
    """ValueError unless 0 <= `momentum` < 1."""
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}.")


@keras.saving.register_keras_serializable(package="gemini_tf")
class MomentumEncoder(keras.layers.Layer):
    """A non-trainable EMA copy of `gemini`'s encoders and projections.

    Args:
        gemini: the `GeminiModel` being trained; its weights start the copy.
        momentum: m in w_m <- m * w_m + (1 - m) * w, in [0, 1).
    """

    def __init__(self, gemini: GeminiModel, momentum: float = 0.995, **kwargs):
        super().__init__(**kwargs)
        check_momentum(momentum)
        self.momentum = momentum
        self.copy = GeminiModel.from_config(gemini.get_config())
        self.copy.set_weights(gemini.get_weights())
        self.copy.trainable = False
        self.built = True

    def similarities(self, token_ids, images):
        """Cosine similarities [images, texts] by the copy, with no gradient (inference mode)."""
        text = self.copy.text_encoder(token_ids, training=False)["pooled"]
        image = self.copy.image_encoder(images, training=False)["pooled"]
        return ops.stop_gradient(self.copy.similarities(text, image))

    def update(self, gemini: GeminiModel) -> None:
        """One EMA step of every copied weight towards `gemini`'s (the model the copy was made of)."""
        for part in MOMENTUM_PARTS:
            for copied, source in zip(getattr(self.copy, part).weights, getattr(gemini, part).weights):
                copied.assign(self.momentum * copied + (1.0 - self.momentum) * ops.cast(source, copied.dtype))

    def get_config(self):
        return {**super().get_config(), "gemini": keras.layers.serialize(self.copy), "momentum": self.momentum}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["gemini"] = keras.layers.deserialize(config["gemini"], custom_objects=custom_objects)
        return cls(**config)
