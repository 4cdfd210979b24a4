"""Masked-language-model inputs: texts -> token ids with some WordPieces masked, and their targets.

BERT's recipe, with keras-hub's `MaskedLMMaskGenerator`: 15 % of the real
tokens are selected; of those 80 % become [MASK], 10 % a random token, 10 %
stay. [PAD], [CLS] and [SEP] are never selected. Texts go through the same
`TextPreprocessor` as every other path, so pre-training sees the token ids
fine-tuning and serving see.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras_hub
import tensorflow as tf

from gemini_tf.preprocessing.text import CLS, MASK, PAD, SEP, TextPreprocessor

MASK_RATE = 0.15


def mask_generator(preprocessor: TextPreprocessor, rate: float = MASK_RATE) -> keras_hub.layers.MaskedLMMaskGenerator:
    """keras-hub's mask generator for `preprocessor`'s vocabulary: dense outputs of at most
    ceil(2 x rate x sequence_length) masks per text, never [PAD], [CLS] or [SEP]."""
    vocabulary = preprocessor.vocabulary
    if MASK not in vocabulary:
        raise ValueError(f"The vocabulary has no {MASK} token; learn it with `learn_vocabulary`.")
    return keras_hub.layers.MaskedLMMaskGenerator(
        vocabulary_size=len(vocabulary),
        mask_selection_rate=rate,
        mask_token_id=vocabulary.index(MASK),
        mask_selection_length=max(1, math.ceil(2 * rate * preprocessor.sequence_length)),
        unselectable_token_ids=[vocabulary.index(token) for token in (PAD, CLS, SEP)],
    )


def masked_dataset(
    texts: Sequence[str],
    preprocessor: TextPreprocessor,
    batch_size: int = 64,
    shuffle: bool = False,
    seed: int = 0,
    rate: float = MASK_RATE,
) -> tf.data.Dataset:
    """({"token_ids", "mask_positions"}, mask_ids, mask_weights) batches for `TextMaskedLM`;
    training draws new masks every epoch."""
    generator = mask_generator(preprocessor, rate)

    def mask(batch):
        masked = generator(preprocessor(batch))
        inputs = {"token_ids": masked["token_ids"], "mask_positions": masked["mask_positions"]}
        return inputs, masked["mask_ids"], tf.cast(masked["mask_weights"], tf.float32)

    dataset = tf.data.Dataset.from_tensor_slices(list(texts))
    if shuffle:
        dataset = dataset.shuffle(len(texts), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).map(mask, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
