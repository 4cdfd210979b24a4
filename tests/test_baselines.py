import keras
import numpy as np
import pytest
import tensorflow as tf

from gemini_tf.baselines.classifiers import (
    image_only_model,
    majority_baseline,
    text_only_model,
    tfidf_baseline,
)
from gemini_tf.baselines.clip import clip_backbone, clip_matcher
from gemini_tf.config import GeminiConfig

CONFIG = GeminiConfig(vocabulary_size=60, sequence_length=12, patch_size=16)


@pytest.mark.slow  # CI time: ~1 min; `make test-slow` runs it
def test_clip_peer_has_the_closest_parameter_count_and_trains(tmp_path):
    target = 400_000
    matcher = clip_matcher(CONFIG, target, sep_id=3, embedding_dim=32)
    counts = {n: clip_backbone(CONFIG, n, 16, 32).count_params() for n in range(1, 9)}
    chosen = matcher.backbone.vision_encoder.num_layers
    assert abs(counts[chosen] - target) == min(abs(c - target) for c in counts.values())
    rng = np.random.default_rng(0)
    token_ids = rng.integers(4, 60, (8, 12)).astype("int32")
    token_ids[:, 6] = 3  # [SEP]
    images = rng.random((8, 64, 64, 3)).astype("float32")
    embeddings = np.asarray(matcher.embed_texts(token_ids))
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    matcher.compile(optimizer="adam")
    data = tf.data.Dataset.from_tensor_slices((token_ids, images, np.arange(8))).batch(8).map(lambda *x: (x,))
    history = matcher.fit(data, epochs=2, verbose=0)
    assert np.isfinite(history.history["itc_loss"]).all()
    matcher.save(str(tmp_path / "clip.keras"))
    restored = keras.saving.load_model(str(tmp_path / "clip.keras"))
    np.testing.assert_allclose(restored.embed_images(images), matcher.embed_images(images), atol=1e-5)


def test_unimodal_baselines_ignore_the_other_modality():
    rng = np.random.default_rng(1)
    token_ids = rng.integers(1, 60, (4, 12)).astype("int32")
    images_a, images_b = rng.random((2, 4, 64, 64, 3)).astype("float32")
    text_only = text_only_model(CONFIG)
    np.testing.assert_allclose(text_only([token_ids, images_a]), text_only([token_ids, images_b]))
    image_only = image_only_model(CONFIG)
    np.testing.assert_allclose(image_only([token_ids, images_a]), image_only([token_ids[::-1], images_a]))
    assert not np.allclose(image_only([token_ids, images_a]), image_only([token_ids, images_b]))


def test_majority_and_tfidf_baselines():
    assert majority_baseline([1, 1, 0]) == 1.0 and majority_baseline([0, 0, 1]) == 0.0
    texts = ["there is a yellow block", "no yellow block here", "there is a blue block", "no blue block here"] * 5
    labels = [1, 0, 1, 0] * 5
    model = tfidf_baseline().fit(texts, labels)
    assert (model.predict_proba(["there is a black block", "no black block here"])[:, 1] > 0.5).tolist() == [
        True,
        False,
    ]
