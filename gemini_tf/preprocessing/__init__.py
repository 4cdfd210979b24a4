"""The single place where bytes and strings become model tensors."""

from gemini_tf.preprocessing.image import (
    decode_image,
    load_image_file,
    load_images,
    preprocess_image_bytes,
    preprocess_images,
    resize_and_scale,
)
from gemini_tf.preprocessing.text import (
    TextPreprocessor,
    learn_vocabulary,
    load_vocabulary,
    save_vocabulary,
)

__all__ = [
    "TextPreprocessor",
    "decode_image",
    "learn_vocabulary",
    "load_image_file",
    "load_images",
    "load_vocabulary",
    "preprocess_image_bytes",
    "preprocess_images",
    "resize_and_scale",
    "save_vocabulary",
]
