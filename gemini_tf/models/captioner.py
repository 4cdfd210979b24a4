"""`GeminiCaptioner`: the Gemini image encoder + a `CaptionDecoder`, trained with teacher forcing.

`model.fit([caption_ids[:, :-1], images], caption_ids[:, 1:])` with sparse
cross-entropy that ignores [PAD] is the whole training recipe. `generate` runs
a keras-hub sampler (greedy, beam or top-p) over the decoder: the image is
encoded once and handed to the sampler as its "cache", so beam search repeats
it per beam; a row that has written [SEP] is forced to [PAD] from then on
(its beam score stops changing), and decoding stops when every row has.
`candidates` returns every beam, for re-ranking by a matcher (`GeminiBundle.describe(rerank=...)`).
"""

from __future__ import annotations

import keras
import keras_hub
import tensorflow as tf
from keras import ops

from gemini_tf.config import GeminiConfig
from gemini_tf.models.caption_decoder import CaptionDecoder
from gemini_tf.models.gemini import image_encoder

SAMPLERS = ("greedy", "beam", "top_p")
CAPTIONER_PARTS = ("image_encoder", "decoder")  # the parts a describe bundle trains (`GeminiBundle.trained_parts`)
NEVER = -1e9  # logit of a token that must not be written


def make_sampler(name: str = "greedy", num_beams: int = 4, top_p: float = 0.9, seed: int | None = None):
    """The keras-hub sampler `name` (one of `SAMPLERS`)."""
    if name == "greedy":
        return keras_hub.samplers.GreedySampler()
    if name == "beam":
        if num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got {num_beams}.")
        # All beams, best first: picking the best by argsort converts to TFLite builtins, argmax does not.
        return keras_hub.samplers.BeamSampler(num_beams=num_beams, return_all_beams=True)
    if name == "top_p":
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}.")
        return keras_hub.samplers.TopPSampler(p=top_p, seed=seed)
    raise ValueError(f"Unknown sampler {name!r}; choose one of {list(SAMPLERS)}.")


@keras.saving.register_keras_serializable(package="gemini_tf")
class GeminiCaptioner(keras.Model):
    """Images -> captions. Inputs `[token_ids, images]` (the caption so far, teacher-forced),
    output next-token logits [batch, length, vocabulary_size].

    Args:
        image_encoder: an `ImageEncoder` (fresh, or a trained matcher's).
        decoder: a `CaptionDecoder` of the image encoder's width.
        start_id, end_id: the [CLS] and [SEP] ids of the vocabulary.
        banned_ids: ids never generated ([PAD], [CLS], [UNK], [MASK]).

    Example:
    ```python
    model = gemini_tf.captioner("tiny", vocabulary_size=200)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0))
    model.fit([ids[:, :-1], images], ids[:, 1:], epochs=10)
    token_ids = model.generate(images, make_sampler("beam"))
    ```
    """

    def __init__(
        self,
        image_encoder: keras.Model,
        decoder: CaptionDecoder,
        start_id: int = 1,
        end_id: int = 2,
        banned_ids: tuple[int, ...] = (0, 1, 3, 4),
        **kwargs,
    ):
        if image_encoder.hidden_dim != decoder.hidden_dim:
            raise ValueError(
                f"The decoder's width ({decoder.hidden_dim}) must equal the image encoder's "
                f"({image_encoder.hidden_dim})."
            )
        # === Layers ===
        self.image_encoder = image_encoder
        self.decoder = decoder

        # === Functional Model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        images = keras.Input(shape=(*image_encoder.image_size, 3), name="images")
        logits = decoder([token_ids, image_encoder(images)["sequence"]])
        super().__init__(inputs=[token_ids, images], outputs=logits, **kwargs)

        # === Config ===
        self.start_id = int(start_id)
        self.end_id = int(end_id)
        self.banned_ids = tuple(int(i) for i in banned_ids)

    @property
    def task(self) -> str:
        return "describe"

    @property
    def sequence_length(self) -> int:
        return self.decoder.sequence_length

    def generate(self, images, sampler=None, max_length: int | None = None):
        """Token ids [batch, max_length]: [CLS], the caption, [SEP], then [PAD] (no [SEP] when the
        caption ran to max_length).

        `sampler`: a keras-hub sampler (default greedy); `max_length` (default and at most the
        decoder's `sequence_length`) counts [CLS] and [SEP]; a caption that reaches it is cut.
        """
        ids = self._sample(images, sampler or make_sampler("greedy"), max_length)
        if isinstance(ids, tuple):  # every beam, best first, and their log-probabilities
            ids = ids[0][:, 0]
        return ids

    def candidates(self, images, num_beams: int = 8, max_length: int | None = None):
        """Every beam of a beam search, best first: token ids [batch, num_beams, max_length] and
        their log-probabilities [batch, num_beams] (what ITM re-ranking chooses from)."""
        return self._sample(images, make_sampler("beam", num_beams), max_length)

    def _sample(self, images, sampler, max_length: int | None):
        max_length = max_length or self.sequence_length
        if not 2 <= max_length <= self.sequence_length:
            raise ValueError(f"max_length must be in [2, {self.sequence_length}], got {max_length}.")
        image_states = self.image_encoder(images, training=False)["sequence"]
        batch = ops.shape(image_states)[0]
        prompt = ops.concatenate(
            [ops.full((batch, 1), self.start_id, "int32"), ops.zeros((batch, max_length - 1), "int32")], axis=1
        )
        vocabulary_size = self.decoder.vocabulary_size
        banned = ops.sum(ops.one_hot(list(self.banned_ids), vocabulary_size), axis=0) * NEVER
        after_end = (1.0 - ops.one_hot(0, vocabulary_size)) * NEVER  # [PAD] only

        def next_logits(prompt, image_states, index):
            logits = self.decoder([prompt, image_states], training=False)
            logits = ops.cast(ops.take(logits, index - 1, axis=1), "float32") + banned
            ended = ops.any(ops.logical_and(ops.equal(prompt, self.end_id), ops.arange(max_length) < index), axis=1)
            return ops.where(ended[:, None], after_end, logits), None, image_states

        return sampler(
            next_logits,
            prompt,
            cache=image_states,
            index=1,
            mask=ops.equal(prompt, self.start_id),
            stop_token_ids=[self.end_id],
            model=self,
        )

    def generate_function(self, sampler=None, max_length: int | None = None) -> tf.types.experimental.Function:
        """`generate` compiled once for any batch of images [batch, H, W, 3] (what `describe` and the
        exported signatures run)."""
        spec = tf.TensorSpec([None, *self.image_encoder.image_size, 3], tf.float32)
        return tf.function(lambda images: self.generate(images, sampler, max_length), input_signature=[spec])

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "image_encoder": keras.layers.serialize(self.image_encoder),
            "decoder": keras.layers.serialize(self.decoder),
            "start_id": self.start_id,
            "end_id": self.end_id,
            "banned_ids": list(self.banned_ids),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for part in ("image_encoder", "decoder"):
            config[part] = keras.layers.deserialize(config[part], custom_objects=custom_objects)
        return cls(**config)


@keras.saving.register_keras_serializable(package="gemini_tf")
class TokenAccuracy(keras.metrics.Mean):
    """Share of next tokens predicted right, [PAD] targets left out."""

    def __init__(self, name: str = "token_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        correct = ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), y_true), "float32")
        return super().update_state(correct, sample_weight=ops.cast(ops.not_equal(y_true, 0), "float32"))


def caption_loss() -> keras.losses.Loss:
    """Sparse cross-entropy of next-token logits, averaged over real (non-[PAD]) targets."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)


def caption_model(
    config: GeminiConfig, start_id: int = 1, end_id: int = 2, banned_ids: tuple[int, ...] = (0, 1, 3, 4)
) -> GeminiCaptioner:
    """A `GeminiCaptioner` sized by `config` (`decoder_layers` decoder blocks); the ids are the
    vocabulary's (`TextPreprocessor.caption_ids`)."""
    decoder = CaptionDecoder(
        config.vocabulary_size,
        config.sequence_length,
        config.hidden_dim,
        config.decoder_layers,
        config.num_heads,
        config.intermediate_dim,
        config.dropout,
        name="decoder",
    )
    return GeminiCaptioner(image_encoder(config), decoder, start_id, end_id, banned_ids, name="gemini_captioner")
