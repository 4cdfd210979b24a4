"""Image preprocessing: encoded bytes or decoded arrays -> float32 [H, W, 3] in [0, 1].

`decode_image` accepts JPEG, PNG, GIF (first frame) and BMP bytes; grayscale and
RGBA become RGB. `resize_and_scale` is the one resize/scale step, shared by
decoded bytes, in-memory arrays, the tf.data pipelines and the serving signatures.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf


def decode_image(image_bytes: tf.Tensor) -> tf.Tensor:
    """Encoded image bytes (scalar string) -> uint8 [H, W, 3].

    Empty input and unknown formats fail with an InvalidArgumentError that names
    `image_bytes`, before the decoder sees them.
    """
    first2, first4 = tf.strings.substr(image_bytes, 0, 2), tf.strings.substr(image_bytes, 0, 4)
    known = tf.reduce_any(
        [
            tf.equal(first2, b"\xff\xd8"),  # JPEG
            tf.equal(first4, b"\x89PNG"),
            tf.equal(first4, b"GIF8"),
            tf.equal(first2, b"BM"),
        ]
    )
    checks = [
        tf.debugging.assert_greater(tf.strings.length(image_bytes), 0, message="image_bytes: empty (0 bytes)"),
        tf.debugging.Assert(known, ["image_bytes: not a JPEG, PNG, GIF or BMP file"]),
    ]
    with tf.control_dependencies(checks):
        image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def resize_and_scale(images: tf.Tensor, image_size: tuple[int, int]) -> tf.Tensor:
    """uint8 (or float 0..255) [..., H, W, 3] -> float32 [..., *image_size, 3] in [0, 1]."""
    images = tf.cast(images, tf.float32)
    height, width = image_size
    if tuple(images.shape[-3:-1]) != (height, width):
        images = tf.image.resize(images, (height, width), method="bilinear", antialias=True)
    return tf.clip_by_value(images / 255.0, 0.0, 1.0)


def preprocess_image_bytes(image_bytes: tf.Tensor, image_size: tuple[int, int]) -> tf.Tensor:
    """Encoded bytes (scalar string) -> float32 [*image_size, 3] in [0, 1]."""
    return resize_and_scale(decode_image(image_bytes), image_size)


def preprocess_images(images, image_size: tuple[int, int]) -> np.ndarray:
    """Decoded uint8 arrays [N, H, W, 3] (or [H, W, 3]) -> float32 numpy in [0, 1]."""
    return resize_and_scale(tf.convert_to_tensor(images), image_size).numpy()


def load_images(images, image_size: tuple[int, int]) -> np.ndarray:
    """Image file paths, or decoded uint8 arrays [N, H, W, 3] -> float32 [N, *image_size, 3]."""
    if len(images) and isinstance(images[0], (str, os.PathLike)):
        return np.stack([load_image_file(str(path), image_size) for path in images])
    return preprocess_images(np.asarray(images), image_size)


def load_image_file(path: str, image_size: tuple[int, int]) -> np.ndarray:
    """Reads and preprocesses one image file, with a clear error for bad files."""
    try:
        data = tf.io.read_file(path)
    except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as error:
        raise FileNotFoundError(f"Image file not found: {path}") from error
    if int(tf.strings.length(data)) == 0:
        raise ValueError(f"Image file is empty (0 bytes): {path}")
    try:
        return preprocess_image_bytes(data, image_size).numpy()
    except tf.errors.InvalidArgumentError as error:
        raise ValueError(f"Not a readable image (expected JPEG, PNG, GIF or BMP): {path}") from error
