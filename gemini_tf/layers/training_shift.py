"""`TrainingShift`: a random translation of training images, and nothing else."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="gemini_tf")
class TrainingShift(keras.layers.RandomTranslation):
    """`keras.layers.RandomTranslation` that moves images only when called with `training=True`.

    Keras' own layer defaults to `training=True`, so a direct call such as
    `model.image_encoder(images)` would shift inference images too; here inference
    (`training` None or False) is always the identity.
    """

    def call(self, data, training=None):
        return super().call(data, training=training is True)
