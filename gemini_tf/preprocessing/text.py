"""Text preprocessing: WordPiece vocabulary learning and the `TextPreprocessor` layer.

Tokenization uses `tensorflow_text.FastBertTokenizer` (lower-case, strip accents,
FastWordpiece), because TF Serving links its ops and TFLite runs them as custom
ops; keras-hub's `WordPieceTokenizer` relies on StaticRegexReplace, which TFLite
cannot run. Packing ([CLS] ... [SEP], pad/truncate) gives the same ids as
keras-hub's `StartEndPacker` with dense ops that TFLite also runs. The tf.data
pipelines, the serving signatures and the TFLite model all call this one layer.
"""

from __future__ import annotations

from collections.abc import Iterable

import keras
import keras_hub
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

PAD, CLS, SEP, UNK, MASK = "[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"
RESERVED_TOKENS = [PAD, CLS, SEP, UNK, MASK]


def learn_vocabulary(texts: Iterable[str], vocabulary_size: int = 1000) -> list[str]:
    """Learns a WordPiece vocabulary (reserved tokens first, [PAD] = 0) from texts."""
    texts = [t for t in texts]
    if not texts:
        raise ValueError("Cannot learn a vocabulary from an empty list of texts.")
    return keras_hub.tokenizers.compute_word_piece_vocabulary(
        tf.data.Dataset.from_tensor_slices(texts).batch(1024),
        vocabulary_size=vocabulary_size,
        lowercase=True,
        strip_accents=True,
        reserved_tokens=RESERVED_TOKENS,
    )


def save_vocabulary(vocabulary: list[str], path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(vocabulary) + "\n")


def load_vocabulary(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.rstrip("\n")]


@keras.saving.register_keras_serializable(package="gemini_tf")
class TextPreprocessor(keras.layers.Layer):
    """Raw strings [batch] -> int32 token ids [batch, sequence_length].

    Lower-cases, strips accents, splits into WordPieces, adds [CLS]/[SEP] and
    pads with [PAD] (id 0) or truncates to `sequence_length`.
    """

    def __init__(self, vocabulary: list[str], sequence_length: int = 16, **kwargs):
        super().__init__(**kwargs)
        missing = [t for t in RESERVED_TOKENS[:4] if t not in vocabulary]
        if missing or vocabulary[0] != PAD:
            raise ValueError(
                f"The vocabulary must start with {PAD} and contain {RESERVED_TOKENS[:4]}; "
                f"missing {missing or [PAD + ' at index 0']}."
            )
        self.vocabulary = list(vocabulary)
        self.sequence_length = sequence_length
        self._tokenizer = tf_text.FastBertTokenizer(
            vocab=self.vocabulary,
            token_out_type=tf.int32,
            unknown_token=UNK,
            lower_case_nfd_strip_accents=True,
        )
        # Captions back to text (`detokenize`); a separate model buffer, so tokenizing stays as it was.
        self._detokenizer = tf_text.FastWordpieceTokenizer(
            vocab=self.vocabulary, token_out_type=tf.int32, unknown_token=UNK, support_detokenization=True
        )
        self._cls_id = self.vocabulary.index(CLS)
        self._sep_id = self.vocabulary.index(SEP)
        self.built = True  # no weights: the vocabulary lives in the tokenizer's model buffer

    @property
    def vocabulary_size(self) -> int:
        return len(self.vocabulary)

    def __call__(self, texts, *args, **kwargs):
        # Accept a string, a list or a numpy array of strings, like keras-hub tokenizers.
        if isinstance(texts, (str, bytes)):
            texts = [texts]
        if not isinstance(texts, tf.Tensor):
            texts = tf.constant(np.asarray(texts).tolist(), dtype=tf.string)
        return super().__call__(texts, *args, **kwargs)

    def call(self, texts):
        # [CLS] tokens [SEP] [PAD]..., exactly what keras-hub's StartEndPacker
        # returns (a test checks that), but with dense ops only: StartEndPacker's
        # RaggedRange / RaggedGather have no TFLite kernels, and this same graph
        # runs in training, TF Serving and the TFLite `text` flavour.
        texts = tf.convert_to_tensor(texts, dtype=tf.string)
        pieces = self._tokenizer.tokenize(texts)
        body_length = self.sequence_length - 2
        body = pieces.to_tensor(default_value=0, shape=[None, body_length])
        lengths = tf.minimum(tf.cast(pieces.row_lengths(), tf.int32), body_length)
        batch = tf.shape(body)[0]
        ids = tf.concat([tf.fill([batch, 1], self._cls_id), body, tf.zeros([batch, 1], tf.int32)], axis=1)
        return ids + self._sep_id * tf.one_hot(lengths + 1, self.sequence_length, dtype=tf.int32)

    def caption_ids(self) -> dict:
        """The ids a caption decoder needs: start ([CLS]), end ([SEP]), and those it must never
        write ([PAD], [CLS], [UNK], [MASK] where the vocabulary has it)."""
        banned = [self.vocabulary.index(t) for t in (PAD, CLS, UNK, MASK) if t in self.vocabulary]
        return {"start_id": self._cls_id, "end_id": self._sep_id, "banned_ids": tuple(banned)}

    def detokenize(self, token_ids) -> tf.Tensor:
        """Token ids [batch, length] -> caption strings [batch]: the words before the first [SEP],
        special tokens dropped, WordPieces joined. Graph-friendly (the `describe` signature)."""
        token_ids = tf.convert_to_tensor(token_ids, tf.int32)
        before_end = tf.equal(tf.cumsum(tf.cast(tf.equal(token_ids, self._sep_id), tf.int32), axis=1), 0)
        special = tf.reduce_any(token_ids[..., None] == tf.constant(self._special_ids, tf.int32), axis=-1)
        words = tf.ragged.boolean_mask(token_ids, before_end & ~special)
        return self._detokenizer.detokenize(words)

    @property
    def _special_ids(self) -> list[int]:
        return [self.vocabulary.index(t) for t in RESERVED_TOKENS if t in self.vocabulary]

    def tokens(self, texts) -> list[list[str]]:
        """Token strings of each text, without padding (for inspection and tests)."""
        ids = self(tf.constant(texts)).numpy()
        return [[self.vocabulary[i] for i in row if i != 0] for row in ids]

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary": self.vocabulary,
            "sequence_length": self.sequence_length,
        }
