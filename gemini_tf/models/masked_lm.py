"""`TextMaskedLM`: masked-language-model pre-training of a `TextEncoder` (a `GeminiModel`'s).

keras-hub's `MaskedLMHead` reads the encoder's states at the masked positions
and scores every vocabulary entry against the encoder's own token embeddings
(tied, as in BERT), so what it learns lands in the embeddings and the encoder
the fine-tuned model keeps. The head itself is dropped after pre-training.
"""

from __future__ import annotations

import keras
import keras_hub

from gemini_tf.models.text_encoder import TextEncoder


@keras.saving.register_keras_serializable(package="gemini_tf")
class TextMaskedLM(keras.Model):
    """Inputs {"token_ids" [batch, length], "mask_positions" [batch, masks]}; outputs logits
    [batch, masks, vocabulary]. Train with sparse categorical cross-entropy on the masked
    tokens' ids, weighted by `mask_weights` (`preprocessing.masking.masked_dataset`).

    Args:
        text_encoder: the `TextEncoder` that learns (e.g. `gemini.text_encoder`; weights are shared).
    """

    def __init__(self, text_encoder: TextEncoder, **kwargs):
        super().__init__(**kwargs)
        self.text_encoder = text_encoder
        embedding = text_encoder.get_layer("token_and_position_embedding").token_embedding
        self.mlm_head = keras_hub.layers.MaskedLMHead(
            token_embedding=embedding, intermediate_activation="gelu", name="mlm_head"
        )
        self.mlm_head.build((None, text_encoder.sequence_length, text_encoder.hidden_dim))
        self.built = True  # the encoder is built and so is the head: callbacks (BackupAndRestore) need it

    def call(self, inputs, training=None):
        sequence = self.text_encoder(inputs["token_ids"], training=training)["sequence"]
        return self.mlm_head(sequence, mask_positions=inputs["mask_positions"])

    def get_config(self):
        return {**super().get_config(), "text_encoder": keras.layers.serialize(self.text_encoder)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["text_encoder"] = keras.layers.deserialize(config["text_encoder"], custom_objects=custom_objects)
        return cls(**config)
