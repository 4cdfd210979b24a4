"""Baselines for image+text binary classification, trained on the same data as gemini_tf.

* `majority_baseline`: always the training set's most frequent label.
* `tfidf_baseline`: scikit-learn TF-IDF word 1-3-grams + LogisticRegression (text only).
* `text_only_model` / `image_only_model`: gemini_tf's own text or image encoder
  plus a sigmoid head, taking the same `[token_ids, images]` inputs and data
  pipelines as `GeminiModel`, but looking at one modality.
"""

from __future__ import annotations

import keras
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline

from gemini_tf.config import GeminiConfig
from gemini_tf.models.gemini import image_encoder, text_encoder


def majority_baseline(train_labels) -> float:
    """P(label = 1) that the majority baseline predicts for every example (0.0 or 1.0)."""
    return float(np.mean(train_labels) >= 0.5)


def tfidf_baseline() -> Pipeline:
    """Word 1-3-gram TF-IDF + logistic regression; fit(texts, labels), predict_proba(texts)."""
    return make_pipeline(
        TfidfVectorizer(ngram_range=(1, 3), sublinear_tf=True), LogisticRegression(max_iter=2000, C=1.0)
    )


def _inputs(config: GeminiConfig):
    return (
        keras.Input(shape=(config.sequence_length,), dtype="int32", name="token_ids"),
        keras.Input(shape=(*config.image_size, 3), name="images"),
    )


def text_only_model(config: GeminiConfig) -> keras.Model:
    """Text encoder + sigmoid head; the images input is accepted and ignored."""
    token_ids, images = _inputs(config)
    encoder = text_encoder(config)
    output = keras.layers.Dense(1, activation="sigmoid", name="classify")(encoder(token_ids)["pooled"])
    return keras.Model([token_ids, images], output, name="text_only")


def image_only_model(config: GeminiConfig) -> keras.Model:
    """Image encoder + sigmoid head; the token_ids input is accepted and ignored."""
    token_ids, images = _inputs(config)
    encoder = image_encoder(config)
    output = keras.layers.Dense(1, activation="sigmoid", name="classify")(encoder(images)["pooled"])
    return keras.Model([token_ids, images], output, name="image_only")
