"""Distillation: the KD losses, λ's two ends, a frozen teacher, and a student that is an ordinary bundle."""

import os

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from gemini_tf.bundle import load
from gemini_tf.cli import main
from gemini_tf.data import pipeline, shapes
from gemini_tf.export.saved_model import export_saved_model
from gemini_tf.models import distillation_trainer
from gemini_tf.models.distillation import binary_kd_loss, kd_loss, similarity_kd_loss
from gemini_tf.models.distillation_trainer import DistillationTrainer
from gemini_tf.models.gemini import gemini_model
from gemini_tf.models.listwise_trainer import ListwiseTrainer
from gemini_tf.training import teacher_cache
from gemini_tf.training.distill import Teacher, distill
from gemini_tf.training.teacher_cache import TeacherCache

TEACHER = np.array([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0], [0.0, 0.0, 3.0]])
STUDENT = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 0.0], [1.0, -1.0, 2.0]])


def test_kd_loss_equals_a_hand_computed_3x3_example():
    temperature = 2.0
    p = np.exp(TEACHER / temperature) / np.exp(TEACHER / temperature).sum(1, keepdims=True)
    q = np.exp(STUDENT / temperature) / np.exp(STUDENT / temperature).sum(1, keepdims=True)
    expected = temperature**2 * np.mean(np.sum(p * np.log(p / q), axis=1))
    assert float(kd_loss(TEACHER, STUDENT, temperature)) == pytest.approx(expected, rel=1e-5)
    assert float(kd_loss(TEACHER, STUDENT, temperature)) == pytest.approx(0.300456, abs=1e-5)


def test_kd_of_the_teacher_with_itself_is_its_minimum():
    rng = np.random.default_rng(0)
    for loss in (
        lambda t, s: kd_loss(t, s, 2.0),
        lambda t, s: binary_kd_loss(t, s, 2.0),
        lambda t, s: similarity_kd_loss(t, s, np.arange(3), 2.0),
    ):
        assert float(loss(TEACHER, TEACHER)) == pytest.approx(0.0, abs=1e-6)
        for _ in range(5):
            assert float(loss(TEACHER, TEACHER + rng.normal(size=(3, 3)))) > 1e-4


def test_similarity_kd_leaves_out_other_captions_of_the_same_image():
    image_ids = np.array([0, 0, 1])  # captions 0 and 1 show the same image
    changed = STUDENT.copy()
    changed[0, 1] = changed[1, 0] = 50.0  # a same-image pair: neither positive nor negative
    np.testing.assert_allclose(
        similarity_kd_loss(TEACHER, STUDENT, image_ids), similarity_kd_loss(TEACHER, changed, image_ids), rtol=1e-6
    )


@pytest.fixture(scope="module")
def models_and_groups(preprocessor):
    groups = shapes.make_groups(8, "train", seed=2, group_size=4)
    token_ids = np.stack([preprocessor(tf.constant(list(g))).numpy() for g in groups.texts])
    images = groups.images.astype(np.float32) / 255.0
    labels = np.tile([1.0, 0.0, 0.0, 0.0], (len(images), 1)).astype(np.float32)
    size = preprocessor.vocabulary_size
    teacher = gemini_model("small", vocabulary_size=size, sequence_length=12, fusion="grounded")
    student = gemini_model("tiny", vocabulary_size=size, fusion="grounded")
    return teacher, student, (token_ids, images), labels


def _loss(trainer, inputs, labels):
    return float(trainer.compute_loss(y=labels, y_pred=trainer(inputs, training=False)))


def test_lambda_0_and_1_reduce_exactly_to_the_single_losses(models_and_groups):
    teacher, student, inputs, labels = models_and_groups
    losses = {lam: _loss(DistillationTrainer(student, teacher, "groups", lam), inputs, labels) for lam in (0, 0.5, 1)}

    token_ids, images = inputs
    group = token_ids.shape[1]
    flat = token_ids.reshape(-1, token_ids.shape[-1])
    encoded = {}
    for role, model in (("teacher", teacher), ("student", student)):
        text, image = model.text_encoder(flat), model.image_encoder(images)
        repeated = {k: ops.repeat(v, group, axis=0) for k, v in image.items()}
        encoded[role] = (
            model.match_logits(text, flat, repeated),
            model.contrastive_head(model.similarities(text["pooled"][::group], image["pooled"])),
        )
    batch = np.arange(len(images))
    contrastive = student.contrastive_head.contrastive_loss(
        student.similarities(student.text_encoder(token_ids[:, 0])["pooled"], student.image_encoder(images)["pooled"]),
        batch,
    )
    kd = binary_kd_loss(encoded["teacher"][0], encoded["student"][0], 2.0) + similarity_kd_loss(
        encoded["teacher"][1], encoded["student"][1], batch, 2.0
    )
    assert losses[0] == pytest.approx(float(contrastive), rel=1e-5)
    assert losses[1] == pytest.approx(float(kd), rel=1e-5)
    assert losses[0.5] == pytest.approx(0.5 * losses[0] + 0.5 * losses[1], rel=1e-5)


def test_with_the_task_loss_lambda_0_is_the_no_teacher_listwise_loss(models_and_groups):
    teacher, student, inputs, labels = models_and_groups
    alone = ListwiseTrainer(student, itc_weight=1.0)
    distilled = DistillationTrainer(student, teacher, "groups", 0.0, student_loss="task")
    assert _loss(distilled, inputs, labels) == pytest.approx(_loss(alone, inputs, labels), rel=1e-5)


def test_lambda_mixes_the_two_losses_on_mined_caption_batches(models_and_groups):
    teacher, student, (token_ids, images), _ = models_and_groups
    inputs = (token_ids[:, 0], images, np.array([0, 0, 1, 2, 3, 4, 5, 6]))  # two captions of image 0
    trainer = DistillationTrainer(student, teacher, "captions", 0.25, seed=3)
    outputs = trainer(inputs, training=False)
    assert outputs["match"]["student"].shape == (3 * len(images),)
    total = float(trainer.compute_loss(y_pred=outputs))
    kd, own = (float(m.result()) for m in (trainer.kd_loss_tracker, trainer.student_loss_tracker))
    assert total == pytest.approx(0.25 * kd + 0.75 * own, rel=1e-5)


def test_classification_distils_the_logits_and_keeps_binary_cross_entropy(models_and_groups):
    teacher, student, (token_ids, images), _ = models_and_groups
    inputs, labels = (token_ids[:, 0], images), np.array([1, 0, 1, 1, 0, 0, 1, 0], np.float32)
    own = DistillationTrainer(student, teacher, "pairs", 0.0)
    probabilities = np.clip(student.predict(list(inputs), verbose=0)[:, -1], 1e-7, 1 - 1e-7)
    expected = -np.mean(labels * np.log(probabilities) + (1 - labels) * np.log(1 - probabilities))
    assert _loss(own, inputs, labels) == pytest.approx(expected, rel=1e-4)
    kd = DistillationTrainer(student, teacher, "pairs", 1.0, temperature=1.0)
    t, s = (m.predict(list(inputs), verbose=0)[:, -1] for m in (teacher, student))
    bernoulli = np.mean(t * np.log(t / s) + (1 - t) * np.log((1 - t) / (1 - s)))
    assert _loss(kd, inputs, labels) == pytest.approx(bernoulli, rel=1e-3, abs=1e-6)


def test_the_teacher_does_not_change_while_the_student_learns(models_and_groups):
    teacher, student, inputs, labels = models_and_groups
    before = [w.copy() for w in teacher.get_weights()]
    student_before = [w.copy() for w in student.get_weights()]
    trainer = DistillationTrainer(student, teacher, "groups", 0.5)
    trainer.compile(optimizer="adam")
    assert {id(w) for w in trainer.trainable_weights}.isdisjoint(id(w) for w in teacher.weights)
    trainer.fit(tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(4), epochs=1, verbose=0)
    for old, new in zip(before, teacher.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert any(not np.array_equal(old, new) for old, new in zip(student_before, student.get_weights()))


def test_the_trainer_round_trips_through_a_keras_file(models_and_groups, tmp_path):
    import keras

    teacher, student, inputs, labels = models_and_groups
    trainer = DistillationTrainer(student, teacher, "groups", 0.75, temperature=3.0)
    path = str(tmp_path / "trainer.keras")
    trainer.save(path)
    restored = keras.models.load_model(path)
    assert (restored.layout, restored.kd_weight, restored.temperature) == ("groups", 0.75, 3.0)
    assert _loss(restored, inputs, labels) == pytest.approx(_loss(trainer, inputs, labels), rel=1e-5)


def test_bad_lambda_temperature_or_layout_fail_clearly(models_and_groups):
    teacher, student, _, _ = models_and_groups
    with pytest.raises(ValueError, match="kd_weight"):
        DistillationTrainer(student, teacher, "groups", 1.5)
    with pytest.raises(ValueError, match="temperature"):
        DistillationTrainer(student, teacher, "groups", 0.5, temperature=0.0)
    with pytest.raises(ValueError, match="layout"):
        DistillationTrainer(student, teacher, "pixels")
    with pytest.raises(ValueError, match="student_loss"):
        DistillationTrainer(student, teacher, "groups", student_loss="labels")


def test_a_distilled_student_is_an_ordinary_bundle(trained_bundle, tmp_path):
    """distill -> .keras round trip with identical outputs -> SavedModel export that answers like Keras."""
    teacher_dir = str(tmp_path / "teacher")
    trained_bundle.save(teacher_dir)
    student = distill(
        str(tmp_path / "student"),
        teacher_dir,
        kd_weight=0.5,
        preset="tiny",
        fusion="concat",
        epochs=1,
        train_scenes=64,
        validation_scenes=32,
        batch_size=16,
        verbose=0,
    )
    assert (
        student.config.fusion == "concat" and student.preprocessor.vocabulary == trained_bundle.preprocessor.vocabulary
    )
    assert student.pretraining["distillation"]["kd_weight"] == 0.5
    assert {"kd_loss", "student_loss", "agreement"} <= set(student.history)
    pairs = shapes.make_pairs(4, "test", seed=3)
    reloaded = load(str(tmp_path / "student"))
    np.testing.assert_allclose(
        reloaded.predict(pairs.images, pairs.texts), student.predict(pairs.images, pairs.texts), atol=1e-6
    )
    exported = tf.saved_model.load(export_saved_model(reloaded, "student", str(tmp_path / "export")))
    token_ids = exported.signatures["tokenize"](text=tf.constant(pairs.texts))["token_ids"]
    out = exported.signatures["predict_tensors"](
        image=tf.constant(pairs.images / 255.0, tf.float32), token_ids=token_ids
    )
    np.testing.assert_allclose(out["probability"], student.predict(pairs.images, pairs.texts), atol=1e-5)


def test_the_student_keeps_the_teachers_inputs_and_vocabulary(trained_bundle, tmp_path, capsys):
    teacher_dir = str(tmp_path / "teacher")
    trained_bundle.save(teacher_dir)
    teacher = Teacher(teacher_dir)
    assert teacher.data() == "shapes"
    with pytest.raises(ValueError, match="image_size"):
        teacher.student_config("tiny", {"image_size": (32, 32)})
    with pytest.raises(ValueError, match="vocabulary"):
        teacher.vocabulary(5000)
    assert main(["distill", "--teacher", teacher_dir, "--lambda", "2", "--output-dir", str(tmp_path / "s")]) == 2
    error = capsys.readouterr().err
    assert "--lambda must be in [0, 1]" in error and "Traceback" not in error


def test_a_teacher_cache_changes_nothing_but_who_runs_the_teacher(trained_bundle, tmp_path, monkeypatch):
    """On the fly, writing the cache, and reading it train the same student; reading never runs the teacher."""
    teacher_dir, cache = str(tmp_path / "teacher"), str(tmp_path / "cache")
    trained_bundle.save(teacher_dir)
    run = dict(kd_weight=0.5, epochs=2, train_scenes=64, validation_scenes=32, batch_size=16, verbose=0)
    on_the_fly = distill(str(tmp_path / "fly"), teacher_dir, **run).history
    writing = distill(str(tmp_path / "write"), teacher_dir, teacher_cache=cache, **run).history
    manifest = TeacherCache(cache).manifest()
    assert manifest["parts"]["train"]["batches"] == 2 * 64 // 16  # every epoch of the run
    assert manifest["parts"]["validation"]["batches"] == 2

    def no_teacher(*args, **kwargs):
        raise AssertionError("the teacher ran although its outputs are cached")

    monkeypatch.setattr(distillation_trainer, "teacher_outputs", no_teacher)
    monkeypatch.setattr(teacher_cache, "teacher_outputs", no_teacher)
    reading = distill(str(tmp_path / "read"), teacher_dir, teacher_cache=cache, **run)
    assert reading.pretraining["distillation"]["teacher_cache"] == os.path.abspath(cache)
    for name in ("loss", "kd_loss", "student_loss", "val_loss"):
        np.testing.assert_allclose(writing[name], on_the_fly[name], rtol=1e-5, err_msg=name)
        np.testing.assert_allclose(reading.history[name], on_the_fly[name], rtol=1e-5, err_msg=name)
    assert len(reading.history["epoch_seconds"]) == 2


def _caption_batches(preprocessor, seed=0):
    images = np.random.default_rng(seed).integers(0, 256, (8, 80, 80, 3), dtype=np.uint8)
    texts = [f"a photo number {i}" for i in range(8)]
    return pipeline.from_captions(images, texts, np.arange(8), preprocessor, (64, 64), 4, shuffle=True, augment=True)


def test_cached_caption_batches_give_the_on_the_fly_loss(models_and_groups, preprocessor, tmp_path):
    """Augmented, shuffled photo batches repeat for a seed, so the mined rows and the loss do too."""
    teacher, student, _, _ = models_and_groups
    first, again = (next(iter(_caption_batches(preprocessor)))[0] for _ in range(2))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    cached = TeacherCache(str(tmp_path / "cache"), verbose=False).attach(
        "train", lambda: _caption_batches(preprocessor), teacher, "captions", 7, {"seed": 7}, 8
    )
    (read,) = next(iter(cached))
    on_the_fly = DistillationTrainer(student, teacher, "captions", 0.5, seed=7)
    from_cache = DistillationTrainer(student, teacher, "captions", 0.5, seed=7)
    expected = float(on_the_fly.compute_loss(y_pred=on_the_fly(read["inputs"], training=False)))
    assert float(from_cache.compute_loss(y_pred=from_cache(read, training=False))) == pytest.approx(expected, rel=1e-5)


def test_a_teacher_cache_of_other_settings_or_other_batches_is_refused(models_and_groups, preprocessor, tmp_path):
    teacher, _, _, _ = models_and_groups
    cache = TeacherCache(str(tmp_path / "cache"), verbose=False)
    cache.attach("train", lambda: _caption_batches(preprocessor), teacher, "captions", 0, {"batch_size": 4}, 8)
    with pytest.raises(ValueError, match="batch_size: 4, not 8"):
        cache.attach("train", lambda: _caption_batches(preprocessor), teacher, "captions", 0, {"batch_size": 8}, 8)
    with pytest.raises(ValueError, match="8 train examples, not 6"):
        cache.attach("train", lambda: _caption_batches(preprocessor), teacher, "captions", 0, {"batch_size": 4}, 6)
    with pytest.raises(ValueError, match="first train batch is not the one the teacher was run on"):
        cache.attach("train", lambda: _caption_batches(preprocessor, 1), teacher, "captions", 0, {"batch_size": 4}, 8)
