import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from gemini_tf.models.contrastive import infonce_loss, sample_hard_negatives, sigmoid_loss
from gemini_tf.models.contrastive_head import ContrastiveHead
from gemini_tf.models.contrastive_trainer import ContrastiveTrainer
from gemini_tf.models.gemini import gemini_model

from conftest import run_python

IDENTITY = np.eye(3, dtype="float32")


def test_infonce_matches_hand_computation():
    # Cosine 1 on the diagonal, 0 elsewhere, scale 2: every row is -log(e^2 / (e^2 + 2)).
    assert float(infonce_loss(IDENTITY, np.array([0, 1, 2]), 2.0)) == pytest.approx(
        math.log(1 + 2 * math.exp(-2)), 1e-5
    )
    # Rows 0 and 1 show the same image: each leaves the other out of its softmax.
    expected = (2 * math.log(1 + math.exp(-2)) + math.log(1 + 2 * math.exp(-2))) / 3
    assert float(infonce_loss(IDENTITY, np.array([7, 7, 3]), 2.0)) == pytest.approx(expected, 1e-5)


def test_infonce_non_trivial_matrix():
    similarity = np.array([[0.9, 0.1, -0.2], [0.3, 0.8, 0.0], [-0.5, 0.4, 0.7]], "float32")
    scale = 5.0
    logits = scale * similarity.astype(np.float64)
    rows = np.mean([-logits[i, i] + math.log(np.exp(logits[i]).sum()) for i in range(3)])
    cols = np.mean([-logits[i, i] + math.log(np.exp(logits[:, i]).sum()) for i in range(3)])
    assert float(infonce_loss(similarity, np.arange(3), scale)) == pytest.approx((rows + cols) / 2, 1e-5)


def test_sigmoid_loss_matches_hand_computation():
    # scale 10, bias -10: diagonal logits 0 -> log 2 each; off-diagonal -10 with z=-1 -> log(1 + e^-10).
    expected = (3 * math.log(2) + 6 * math.log(1 + math.exp(-10))) / 3
    assert float(sigmoid_loss(IDENTITY, np.arange(3), 10.0, -10.0)) == pytest.approx(expected, 1e-5)
    # Same image for rows 0 and 1: (0,1) and (1,0) become positives with logit -10.
    expected = (3 * math.log(2) + 2 * math.log(1 + math.exp(10)) + 4 * math.log(1 + math.exp(-10))) / 3
    assert float(sigmoid_loss(IDENTITY, np.array([4, 4, 9]), 10.0, -10.0)) == pytest.approx(expected, 1e-5)


def test_miner_never_returns_a_positive():
    rng = np.random.default_rng(0)
    image_ids = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 4, 5])  # several captions per image
    seed = keras.random.SeedGenerator(0)
    for _ in range(50):
        # Positives get the highest similarity, so a miner that ignored the mask would pick them.
        logits = rng.normal(size=(12, 12)) + 20.0 * (image_ids[:, None] == image_ids[None, :])
        picked = np.asarray(sample_hard_negatives(logits.astype("float32"), image_ids, seed))
        assert np.all(image_ids[picked] != image_ids)


def test_miner_prefers_hard_negatives():
    logits = np.array([[0.0, 5.0, -5.0], [5.0, 0.0, -5.0], [-5.0, 5.0, 0.0]], "float32")
    seed = keras.random.SeedGenerator(1)
    picks = np.stack([np.asarray(sample_hard_negatives(logits, np.arange(3), seed)) for _ in range(200)])
    assert np.mean(picks[:, 0] == 1) > 0.95  # softmax(5 vs -5) puts ~all mass on column 1


def _batch(n=16, vocabulary=50, seed=0):
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(4, vocabulary, (n, 12)).astype("int32")
    token_ids[:, 0], token_ids[:, -1] = 2, 3
    return token_ids, rng.random((n, 64, 64, 3)).astype("float32"), np.arange(n) // 2


@pytest.mark.parametrize("loss", ["infonce", pytest.param("sigmoid", marks=pytest.mark.slow)])
def test_contrastive_trainer_fit_reports_both_losses_and_round_trips(loss, tmp_path):
    keras.utils.set_random_seed(0)
    gemini = gemini_model("tiny", vocabulary_size=50, embedding_dim=32, contrastive_loss=loss)
    trainer = ContrastiveTrainer(gemini, seed=0)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    token_ids, images, image_ids = _batch()
    dataset = tf.data.Dataset.from_tensor_slices((token_ids, images, image_ids)).batch(8).map(lambda *x: (x,))
    history = trainer.fit(dataset, epochs=8, verbose=0)
    assert {"loss", "itc_loss", "itm_loss", "itm_accuracy"} <= set(history.history)
    assert history.history["itc_loss"][-1] < history.history["itc_loss"][0]
    out = trainer((token_ids[:8], images[:8], image_ids[:8]))
    # 1 positive : 2 mined negatives, labels from image ids.
    assert out["itm_labels"].shape == (24,) and float(np.sum(out["itm_labels"][:8])) == 8
    path = str(tmp_path / "trainer.keras")
    trainer.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(restored.gemini.embed_texts(token_ids), gemini.embed_texts(token_ids), atol=1e-6)
    np.testing.assert_allclose(restored.gemini.embed_images(images), gemini.embed_images(images), atol=1e-6)
    assert restored.gemini.contrastive_head.loss_name == loss


def test_contrastive_head_owns_scale_bias_and_loss():
    head = ContrastiveHead("sigmoid")
    head.build()
    assert float(head.scale) == pytest.approx(10.0) and float(head.bias) == pytest.approx(-10.0)
    assert [w.name for w in head.trainable_weights] == ["log_scale", "bias"]
    np.testing.assert_allclose(head(IDENTITY), 10.0 * IDENTITY - 10.0, atol=1e-5)
    assert float(head.contrastive_loss(IDENTITY, np.arange(3))) == pytest.approx(
        float(sigmoid_loss(IDENTITY, np.arange(3), 10.0, -10.0)), 1e-6
    )
    infonce = ContrastiveHead("infonce")
    infonce.build()
    assert [w.name for w in infonce.trainable_weights] == ["log_scale"]  # InfoNCE is shift-invariant
    assert float(infonce.scale) == pytest.approx(1 / 0.07, 1e-4)
    with pytest.raises(ValueError, match="Unknown contrastive loss 'triplet'"):
        ContrastiveHead("triplet")


MIRRORED_SCRIPT = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, numpy as np
from gemini_tf.models.contrastive_head import ContrastiveHead
from gemini_tf.models.contrastive_trainer import ContrastiveTrainer
from gemini_tf.models.gemini import gemini_model
rng = np.random.default_rng(0)
token_ids = rng.integers(4, 50, (16, 12)).astype("int32")
images = rng.random((16, 64, 64, 3)).astype("float32")
image_ids = np.arange(16)
strategy = tf.distribute.MirroredStrategy()
with strategy.scope():
    matcher = ContrastiveTrainer(gemini_model("tiny", vocabulary_size=50, embedding_dim=32), itm_weight=0.0)
    matcher.compile(optimizer=keras.optimizers.SGD(0.0))
def itc(rows):
    out = matcher((token_ids[rows], images[rows], image_ids[rows]))
    return float(matcher.gemini.contrastive_head.contrastive_loss(out["similarity"], out["image_ids"]))
halves = (itc(slice(0, 8)) + itc(slice(8, 16))) / 2
whole = itc(slice(0, 16))
data = tf.data.Dataset.from_tensor_slices((token_ids, images, image_ids)).batch(16).map(lambda *x: (x,))
history = matcher.fit(data, epochs=1, verbose=0)
print("replicas", strategy.num_replicas_in_sync, "mirrored", history.history["itc_loss"][0],
      "halves", halves, "whole", whole)
assert abs(history.history["itc_loss"][0] - halves) < 1e-4
assert abs(halves - whole) > 1e-3
"""


@pytest.mark.slow  # CI time: ~1 min; `make test-slow` runs it
def test_mirrored_strategy_contrasts_within_each_replica():
    result = run_python(MIRRORED_SCRIPT)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "replicas 2" in result.stdout
