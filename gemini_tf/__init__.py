"""gemini_tf: small multimodal image-text models in Keras 3 / TensorFlow.

A text encoder, a conv-plus-attention image encoder and a fusion head
(concatenation or cross-attention) in one functional Keras model, trained with
`model.fit` for image-text matching and binary classification.
"""

__version__ = "0.1.0"

from gemini_tf.bundle import GeminiBundle, load
from gemini_tf.config import PRESETS, GeminiConfig
from gemini_tf import retrieval
from gemini_tf.data import shapes
from gemini_tf.data.captions import CaptionSet
from gemini_tf.data.manifest import from_manifest
from gemini_tf.data.pipeline import from_arrays, from_captions, from_groups, from_image_bytes, from_records
from gemini_tf.data.report import DataError, DataReport
from gemini_tf.data.tfrecords import convert_manifest, from_tfrecords
from gemini_tf.evaluation import binary_metrics, evaluate_shapes, metrics_by_kind
from gemini_tf.export.saved_model import export_saved_model
from gemini_tf.export.tflite import export_tflite
from gemini_tf.models.contrastive import infonce_loss, sample_hard_negatives, sigmoid_loss
from gemini_tf.models.contrastive_matcher import ContrastiveMatcher
from gemini_tf.models.fusion import ConcatFusion, CrossAttentionFusion
from gemini_tf.models.gemini import GeminiModel, gemini_model
from gemini_tf.models.group_matcher import GroupMatcher
from gemini_tf.models.image_encoder import ImageEncoder
from gemini_tf.models.text_encoder import TextEncoder
from gemini_tf.preprocessing import (
    TextPreprocessor,
    decode_image,
    learn_vocabulary,
    load_image_file,
    preprocess_image_bytes,
    preprocess_images,
)
from gemini_tf.training import build_model, compile_model, fit, get_strategy, train, train_classifier

__all__ = [
    "CaptionSet", "ConcatFusion", "ContrastiveMatcher", "CrossAttentionFusion", "DataError", "DataReport",
    "GeminiBundle", "GeminiConfig", "GeminiModel", "GroupMatcher", "ImageEncoder", "PRESETS", "TextEncoder",
    "TextPreprocessor", "binary_metrics", "build_model", "compile_model", "convert_manifest", "decode_image",
    "evaluate_shapes", "export_saved_model", "export_tflite", "fit", "from_arrays", "from_captions",
    "from_groups", "from_image_bytes", "from_manifest", "from_records", "from_tfrecords", "gemini_model",
    "get_strategy", "infonce_loss", "learn_vocabulary", "load", "load_image_file", "metrics_by_kind",
    "preprocess_image_bytes", "preprocess_images", "retrieval", "sample_hard_negatives", "shapes",
    "sigmoid_loss", "train", "train_classifier",
]
