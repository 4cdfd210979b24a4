"""Issue #13: ITM warm-up, momentum distillation and the ITM accuracy on ITC-mined negatives."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from gemini_tf.data.sources import ShapesSource
from gemini_tf.models.contrastive_trainer import ContrastiveTrainer, itm_schedule
from gemini_tf.models.gemini import gemini_model
from gemini_tf.models.momentum import MOMENTUM_PARTS, MomentumEncoder
from gemini_tf.retrieval import hardest_negative_images, mined_itm_accuracy
from gemini_tf.training.recipes import ContrastiveOptions, recipe_for


def _batch(n=8, vocabulary=50, seed=0):
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(4, vocabulary, (n, 12)).astype("int32")
    token_ids[:, 0], token_ids[:, -1] = 2, 3
    return token_ids, rng.random((n, 64, 64, 3)).astype("float32"), np.arange(n) // 2


def _dataset(n=8):
    return tf.data.Dataset.from_tensor_slices(_batch(n)).batch(n).map(lambda *x: (x,))


def _copied_weights(trainer):
    return [w for part in MOMENTUM_PARTS for w in getattr(trainer.momentum_encoder.copy, part).weights]


def _model_weights(trainer):
    return [w for part in MOMENTUM_PARTS for w in getattr(trainer.gemini, part).weights]


def test_itm_schedule_is_zero_during_the_warmup_and_one_after():
    weights = [float(itm_schedule(step, 5)) for step in range(10)]
    assert weights == [0.0] * 5 + [1.0] * 5
    assert float(itm_schedule(0, 0)) == 1.0  # no warm-up: ITM from the first step


def test_warmup_trains_itc_alone_then_itc_plus_itm():
    keras.utils.set_random_seed(0)
    trainer = ContrastiveTrainer(gemini_model("tiny", vocabulary_size=50), seed=0, itm_warmup_steps=2)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    ((batch,),) = _dataset().take(1)
    out = trainer(batch)
    losses = []
    for _ in range(3):
        losses.append(float(trainer.compute_loss(y_pred=out)))
        trainer.optimizer.iterations.assign_add(1)
    # ITC and ITM are both positive, so the sum is larger than ITC alone.
    assert losses[0] == losses[1] and losses[2] > losses[1]


def test_momentum_weights_follow_the_ema_formula_get_no_gradients_and_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    momentum = 0.9
    trainer = ContrastiveTrainer(
        gemini_model("tiny", vocabulary_size=50), seed=0, momentum=momentum, itm_warmup_steps=1
    )
    trainer.compile(optimizer=keras.optimizers.Adam(1e-2))
    copied = _copied_weights(trainer)
    # The copy starts equal to the model and is not among the trainable (optimised) weights.
    for a, b in zip(copied, _model_weights(trainer)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    trainable = {id(w) for w in trainer.trainable_weights}
    assert not any(id(w) in trainable for w in trainer.momentum_encoder.weights)
    ((batch,),) = _dataset().take(1)
    with tf.GradientTape() as tape:
        loss = trainer.compute_loss(y_pred=trainer(batch, training=True))
    assert all(g is None for g in tape.gradient(loss, [w.value for w in copied]))

    before_copy = [w.numpy() for w in copied]
    trainer.fit(_dataset(), epochs=1, verbose=0)  # one optimizer step, then one EMA update
    after_model = [w.numpy() for w in _model_weights(trainer)]
    changed = 0
    for old, new_model, new_copy in zip(before_copy, after_model, [w.numpy() for w in copied]):
        np.testing.assert_allclose(new_copy, momentum * old + (1 - momentum) * new_model, rtol=1e-5, atol=1e-6)
        changed += not np.allclose(new_copy, old)
    assert changed > 0  # the model moved, so its copy did too

    path = str(tmp_path / "trainer.keras")
    trainer.save(path)
    restored = keras.saving.load_model(path)
    assert restored.momentum == momentum and restored.itm_warmup_steps == 1
    token_ids, images, _ = _batch()
    np.testing.assert_allclose(
        restored.momentum_encoder.similarities(token_ids, images),
        trainer.momentum_encoder.similarities(token_ids, images),
        atol=1e-5,
    )


def test_momentum_encoder_checks_its_momentum():
    with pytest.raises(ValueError, match="momentum"):
        MomentumEncoder(gemini_model("tiny", vocabulary_size=50), momentum=1.0)
    with pytest.raises(ValueError, match="itm_warmup"):
        ContrastiveOptions(itm_warmup=1.5)
    with pytest.raises(ValueError, match="matching 'contrastive'"):
        recipe_for("listwise", ShapesSource(), "itm", contrastive=ContrastiveOptions(momentum=0.99))


def test_itm_accuracy_uses_the_hardest_itc_negative_not_a_random_one():
    # 4 images, 4 texts (text t shows image t). By ITC, text t's hardest other image is (t + 1) % 4;
    # every other image is far easier.
    similarity = np.full((4, 4), -0.5)
    similarity[np.arange(4), np.arange(4)] = 0.2
    similarity[(np.arange(4) + 1) % 4, np.arange(4)] = 0.9
    image_index = np.arange(4)
    np.testing.assert_array_equal(hardest_negative_images(similarity, image_index), (np.arange(4) + 1) % 4)
    scored = []

    def score(texts, images):
        scored.append(np.asarray(images).copy())
        # Accepts its own image, and wrongly the hardest negative of texts 0 and 1.
        own = np.asarray(images) == np.asarray(texts)
        hardest_fooled = (np.asarray(images) == (np.asarray(texts) + 1) % 4) & (np.asarray(texts) < 2)
        return np.where(own | hardest_fooled, 3.0, -3.0)

    result = mined_itm_accuracy(similarity, image_index, score)
    np.testing.assert_array_equal(scored[1], (np.arange(4) + 1) % 4)  # the negatives asked for
    assert result["positives_accepted"] == 1.0 and result["negatives_rejected"] == 0.5
    assert result["balanced_accuracy"] == 0.75
