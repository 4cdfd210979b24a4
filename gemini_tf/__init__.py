"""gemini_tf: small multimodal image-text models in Keras 3 / TensorFlow.

A text encoder, a conv-plus-attention image encoder and a fusion head
(concatenation, cross-attention or grounded relations) in one functional Keras
model, trained with `model.fit` for image-text matching, retrieval and binary
classification; a caption decoder on the same image encoder describes images.
Exported for TF Serving and TFLite.

Public names load on first use (PEP 562), so `import gemini_tf` is quick and
the `gemini-tf` command can quiet TensorFlow's start-up logging before
TensorFlow is imported.
"""

import importlib

from gemini_tf.version import __version__ as __version__

_NAMES = {
    "gemini_tf.bundle": ["GeminiBundle", "load"],
    "gemini_tf.caption_evaluation": ["caption_scores", "evaluate_descriptions"],
    "gemini_tf.config": ["GeminiConfig", "PRESETS"],
    "gemini_tf.data.captions": ["CaptionSet"],
    "gemini_tf.data.labelled": ["LabelledPairs"],
    "gemini_tf.data.manifest": ["from_manifest"],
    "gemini_tf.data.pipeline": ["from_arrays", "from_captions", "from_files", "from_groups", "from_image_bytes"],
    "gemini_tf.data.report": ["DataError", "DataReport"],
    "gemini_tf.data.sources": ["DataSource", "ShapesSource", "open_source"],
    "gemini_tf.data.tfrecords": ["convert_manifest", "TFRecordPairs"],
    "gemini_tf.evaluation": ["binary_metrics", "evaluate", "evaluate_shapes", "metrics_by_kind"],
    "gemini_tf.export.saved_model": ["export_saved_model"],
    "gemini_tf.export.tflite": ["export_tflite"],
    "gemini_tf.models.caption_decoder": ["CaptionDecoder"],
    "gemini_tf.models.captioner": ["GeminiCaptioner", "caption_model", "make_sampler"],
    "gemini_tf.models.contrastive": ["infonce_loss", "sample_hard_negatives", "sigmoid_loss"],
    "gemini_tf.models.contrastive_head": ["ContrastiveHead"],
    "gemini_tf.models.contrastive_trainer": ["ContrastiveTrainer"],
    "gemini_tf.models.distillation_trainer": ["DistillationTrainer"],
    "gemini_tf.models.fusion": ["ConcatFusion", "CrossAttentionFusion"],
    "gemini_tf.models.gemini": ["GeminiModel", "gemini_model"],
    "gemini_tf.models.grounded_fusion": ["GroundedFusion"],
    "gemini_tf.models.image_encoder": ["ImageEncoder"],
    "gemini_tf.models.listwise_trainer": ["ListwiseTrainer"],
    "gemini_tf.models.momentum": ["MomentumEncoder"],
    "gemini_tf.models.text_encoder": ["TextEncoder"],
    "gemini_tf.preprocessing": [
        "TextPreprocessor",
        "decode_image",
        "learn_vocabulary",
        "load_image_file",
        "preprocess_image_bytes",
        "preprocess_images",
    ],
    "gemini_tf.training": ["FitSettings", "fit", "get_strategy", "train"],
    "gemini_tf.training.distill": ["Teacher", "distill"],
    "gemini_tf.training.recipes": ["ContrastiveOptions"],
}
_MODULES = {
    "shapes": "gemini_tf.data.shapes",
    "retrieval": "gemini_tf.retrieval",
    "viz": "gemini_tf.viz",
    "evaluation": "gemini_tf.evaluation",
    "preprocessing": "gemini_tf.preprocessing",
}
_WHERE = {name: module for module, names in _NAMES.items() for name in names}
__all__ = sorted([*_WHERE, *_MODULES, "__version__"])


def __getattr__(name: str):
    if name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    elif name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
    else:
        raise AttributeError(f"module 'gemini_tf' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
