"""Light photo augmentation for training: random resized crop, and a flip only when the
caption allows it ("left" and "right" swap meaning in a mirror image).

Augmentation runs on decoded uint8 images before the shared `resize_and_scale`,
so augmented training images still go through the one preprocessing path. It is
stateless: the same `seed` gives the same crop and flip, so a seeded training
stream is the same in every run (what a cache of a teacher's outputs relies on).
"""

from __future__ import annotations

import tensorflow as tf

from gemini_tf.preprocessing.image import resize_and_scale

# Captions that name a side describe a different picture once mirrored.
SIDE_WORDS = r".*\b(left|right|lefthand|righthand)\b.*"


def allows_flip(text: tf.Tensor) -> tf.Tensor:
    """True unless the (scalar string) text names a side."""
    return tf.logical_not(tf.strings.regex_full_match(tf.strings.lower(text), SIDE_WORDS))


def random_resized_crop(
    image: tf.Tensor, image_size: tuple[int, int], seed: tf.Tensor, area_range: tuple[float, float] = (0.6, 1.0)
) -> tf.Tensor:
    """uint8 [H, W, 3] -> float32 [*image_size, 3]: a random crop of 60-100 % of the area,
    aspect ratio 3/4..4/3, resized. `seed`: a stateless seed, shape [2]."""
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        tf.zeros([1, 0, 4]),
        seed=seed,
        min_object_covered=0.0,
        aspect_ratio_range=(0.75, 1.33),
        area_range=area_range,
        use_image_if_no_bounding_boxes=True,
    )
    return resize_and_scale(tf.slice(image, begin, size), image_size)


def augment(image: tf.Tensor, text: tf.Tensor, image_size: tuple[int, int], seed: tf.Tensor) -> tf.Tensor:
    """Random resized crop, then a horizontal flip half the time if `text` allows it.
    `seed`: a stateless seed, shape [2] (one per image and epoch)."""
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    image = random_resized_crop(image, image_size, crop_seed)
    flip = tf.logical_and(allows_flip(text), tf.random.stateless_uniform([], flip_seed) < 0.5)
    return tf.cond(flip, lambda: tf.image.flip_left_right(image), lambda: image)
