"""`LayerScale`: a transformer block's residual update, scaled per channel and starting small.

A pre-norm block returns y = x + f(x). At initialisation f(x) — above all the
attention average of every token — is as large as x itself, and with Adam at
its default 1e-3 the plain `compile(optimizer="adam",
loss="binary_crossentropy")` workflow then stalls at chance, even on "there is a
red object". Keeping each token's own state dominant early, x + gamma * f(x)
with gamma starting at 0.1 (LayerScale, Touvron et al. 2021, "Going deeper with
Image Transformers"), lets it learn. Used around keras-hub's
`TransformerEncoder` / `TransformerDecoder`: `x = scale(x, block(x, ...))`.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="gemini_tf")
class LayerScale(keras.layers.Layer):
    """(x, block(x)) -> x + gamma * (block(x) - x), gamma a learned per-channel scale.

    Args:
        initial_scale: gamma at initialisation.
    """

    def __init__(self, initial_scale: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.initial_scale = initial_scale

    def build(self, inputs_shape, outputs_shape=None):
        self.gamma = self.add_weight(
            shape=(inputs_shape[-1],), initializer=keras.initializers.Constant(self.initial_scale), name="gamma"
        )
        self.built = True

    def call(self, inputs, outputs):
        return inputs + self.gamma * (outputs - inputs)

    def compute_output_shape(self, inputs_shape, outputs_shape=None):
        return inputs_shape

    def get_config(self):
        return {**super().get_config(), "initial_scale": self.initial_scale}
