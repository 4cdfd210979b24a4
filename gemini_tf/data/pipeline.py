"""Arrays, image bytes, files, caption groups and captions -> batched tf.data.

Labelled pipelines yield `((token_ids, images), labels)` batches, ready for
`model.fit`; `from_groups`, `from_image_groups` and `from_captions` yield the
inputs of the listwise (captions per image, images per text) and contrastive trainers.
Decoding, resizing and tokenization are the functions of
`gemini_tf.preprocessing`; nothing here re-implements them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from gemini_tf.preprocessing.augment import augment as augment_image
from gemini_tf.preprocessing.image import preprocess_image_bytes, resize_and_scale
from gemini_tf.preprocessing.text import TextPreprocessor

AUTOTUNE = tf.data.AUTOTUNE


def check_labels(labels, num_classes: int = 2, where: str = "labels") -> np.ndarray:
    """Validates integer class labels: all in [0, num_classes), at least two classes."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"{where}: expected a non-empty 1-D list of labels, got shape {labels.shape}.")
    if not np.all(np.isin(labels, np.arange(num_classes))):
        bad = sorted({v for v in labels.tolist() if v not in range(num_classes)})[:5]
        raise ValueError(f"{where}: labels must be integers in 0..{num_classes - 1}; found {bad}.")
    if len(np.unique(labels)) < 2:
        raise ValueError(f"{where}: every label is {labels[0]}; a classifier needs both classes to learn.")
    return labels.astype(np.int32)


def check_texts(texts: Sequence[str], where: str = "texts") -> list[str]:
    """Rejects empty or whitespace-only texts, naming the first offending row."""
    texts = [str(t) for t in texts]
    for row, text in enumerate(texts):
        if not text.strip():
            raise ValueError(f"{where}: row {row} has an empty text.")
    return texts


def _labelled_slices(images, texts: Sequence[str], labels, shuffle: bool, seed: int) -> tf.data.Dataset:
    """Validated, optionally shuffled ((text, image), label) elements."""
    texts = check_texts(texts)
    labels = check_labels(labels)
    if len(images) != len(texts) or len(texts) != len(labels):
        raise ValueError(
            f"images ({len(images)}), texts ({len(texts)}) and labels ({len(labels)}) must have the same length."
        )
    dataset = tf.data.Dataset.from_tensor_slices(((texts, images), labels))
    if shuffle:
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    return dataset


def from_arrays(
    images: np.ndarray,
    texts: Sequence[str],
    labels,
    preprocessor: TextPreprocessor,
    image_size: tuple[int, int],
    batch_size: int = 64,
    shuffle: bool = False,
    seed: int = 0,
) -> tf.data.Dataset:
    """Decoded uint8 images [N, H, W, 3] + texts + labels -> batched dataset."""
    dataset = _labelled_slices(images, texts, labels, shuffle, seed)

    def preprocess(inputs, label):
        text, image = inputs
        return (preprocessor(text), resize_and_scale(image, image_size)), label

    return dataset.batch(batch_size).map(preprocess, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def from_image_bytes(
    image_bytes: Sequence[bytes],
    texts: Sequence[str],
    labels,
    preprocessor: TextPreprocessor,
    image_size: tuple[int, int],
    batch_size: int = 64,
    shuffle: bool = False,
    seed: int = 0,
) -> tf.data.Dataset:
    """Encoded image files (bytes) + texts + labels -> batched dataset."""
    dataset = _labelled_slices(list(image_bytes), texts, labels, shuffle, seed)
    return _decode_and_batch(dataset, lambda data: data, preprocessor, image_size, batch_size)


def _decode_and_batch(
    dataset: tf.data.Dataset, read, preprocessor: TextPreprocessor, image_size: tuple[int, int], batch_size: int
) -> tf.data.Dataset:
    """((text, source), label) elements -> decoded in parallel, batched, tokenized.

    `read(source)` returns the encoded image bytes (identity, or read a file).
    """
    dataset = dataset.map(
        lambda inputs, label: ((inputs[0], preprocess_image_bytes(read(inputs[1]), image_size)), label),
        num_parallel_calls=AUTOTUNE,
    )

    def tokenize(inputs, label):
        return (preprocessor(inputs[0]), inputs[1]), label

    return dataset.batch(batch_size).map(tokenize, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def _first_is_true(count: int, group_size: int) -> np.ndarray:
    """float32 labels [count, group_size] of groups whose first member is the true one: 1, 0, 0, ..."""
    labels = np.zeros((count, group_size), np.float32)
    labels[:, 0] = 1.0
    return labels


def from_groups(
    images: np.ndarray,
    texts: Sequence[Sequence[str]],
    preprocessor: TextPreprocessor,
    image_size: tuple[int, int],
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
) -> tf.data.Dataset:
    """Images + caption groups (true caption first) -> ((token_ids [B, K, L], images), labels [B, K]).

    The input of `ListwiseTrainer`; labels are 1 for the first caption, 0 for the rest.
    """
    group_size = len(texts[0])
    if any(len(group) != group_size for group in texts):
        raise ValueError("Every caption group must have the same size.")
    check_texts([t for group in texts for t in group], where="caption groups")
    labels = _first_is_true(len(texts), group_size)
    dataset = tf.data.Dataset.from_tensor_slices(((list(map(list, texts)), images), labels))
    if shuffle:
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)

    def preprocess(inputs, label):
        groups, image = inputs
        token_ids = tf.reshape(preprocessor(tf.reshape(groups, [-1])), [-1, group_size, preprocessor.sequence_length])
        return (token_ids, resize_and_scale(image, image_size)), label

    return dataset.batch(batch_size).map(preprocess, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def from_captions(
    images: np.ndarray,
    texts: Sequence[str],
    image_index: np.ndarray,
    preprocessor: TextPreprocessor,
    image_size: tuple[int, int],
    batch_size: int = 64,
    shuffle: bool = False,
    augment: bool = False,
    seed: int = 0,
) -> tf.data.Dataset:
    """Decoded images [N_images, H, W, 3] + captions -> ((token_ids, images, image_ids),) batches.

    The input of `ContrastiveMatcher`: one row per caption, `image_ids` is the
    caption's image row, so captions of one image are known to match it. With
    `augment`, random resized crop and a caption-aware flip (`preprocessing.augment`),
    drawn from per-caption seeds that differ every epoch and repeat for the same `seed`.
    """
    texts = check_texts(texts, where="captions")
    image_index = np.asarray(image_index, np.int32)
    if len(texts) != len(image_index) or image_index.max(initial=-1) >= len(images):
        raise ValueError("image_index must give, for every caption, a row of images.")
    gallery = tf.constant(images)
    dataset = tf.data.Dataset.from_tensor_slices((texts, image_index))
    if shuffle:
        dataset = dataset.shuffle(len(texts), seed=seed, reshuffle_each_iteration=True)

    # Stateless augmentation seeds, shape [2] per caption: new every epoch, the same in every run.
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    dataset = tf.data.Dataset.zip(dataset, seeds)

    def load(caption, augment_seed):
        text, index = caption
        image = tf.gather(gallery, index)
        image = augment_image(image, text, image_size, augment_seed) if augment else resize_and_scale(image, image_size)
        return text, image, index

    def tokenize(text, image, index):
        return ((preprocessor(text), image, index),)

    dataset = dataset.map(load, num_parallel_calls=AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=shuffle)
    return dataset.map(tokenize, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def from_files(
    paths: Sequence[str],
    texts: Sequence[str],
    labels,
    preprocessor: TextPreprocessor,
    image_size: tuple[int, int],
    batch_size: int = 64,
    shuffle: bool = False,
    seed: int = 0,
) -> tf.data.Dataset:
    """Image files on disk + texts + labels -> ((token_ids, images), labels) batches.

    Files are read and decoded in parallel each epoch; only paths live in memory.
    """
    dataset = _labelled_slices(list(paths), texts, labels, shuffle, seed)
    return _decode_and_batch(dataset, tf.io.read_file, preprocessor, image_size, batch_size)


def from_image_groups(
    images,
    texts: Sequence[str],
    preprocessor: TextPreprocessor,
    image_size: tuple[int, int],
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
) -> tf.data.Dataset:
    """One text with a group of images (the one it is true of first) -> ((token_ids [B, L],
    images [B, K, H, W, 3]), labels [B, K]), the input of `ImageListwiseTrainer`.

    `images`: file paths [N][K], read and decoded in parallel each epoch, or uint8 [N, K, H, W, 3].
    """
    texts = check_texts(texts, where="image groups")
    group_size = len(images[0])
    labels = _first_is_true(len(texts), group_size)
    files = not isinstance(images, np.ndarray)
    dataset = tf.data.Dataset.from_tensor_slices(((texts, [list(g) for g in images] if files else images), labels))
    if shuffle:
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)

    def load(inputs, label):
        text, group = inputs
        if files:
            group = tf.stack([preprocess_image_bytes(tf.io.read_file(group[k]), image_size) for k in range(group_size)])
        else:
            group = resize_and_scale(group, image_size)
        return (text, group), label

    def tokenize(inputs, label):
        return (preprocessor(inputs[0]), inputs[1]), label

    dataset = dataset.map(load, num_parallel_calls=AUTOTUNE)
    return dataset.batch(batch_size).map(tokenize, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
