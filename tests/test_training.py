import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from gemini_tf.models.gemini import gemini_model
from gemini_tf.models.listwise_trainer import ListwiseTrainer
from gemini_tf.training import FitSettings, fit, get_strategy, learning_rate_schedule

from conftest import run_python


@pytest.mark.parametrize("fusion", [pytest.param("concat", marks=pytest.mark.slow), "cross_attention"])
def test_tiny_model_overfits_64_examples_with_the_documented_workflow(fusion, model_inputs, shapes_pairs, preprocessor):
    keras.utils.set_random_seed(0)
    token_ids, images = model_inputs[0][:64], model_inputs[1][:64]
    labels = shapes_pairs.labels[:64]
    model = gemini_model("tiny", vocabulary_size=preprocessor.vocabulary_size, fusion=fusion)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
    model.fit([token_ids, images], labels, epochs=100, batch_size=16, verbose=0)
    _, accuracy = model.evaluate([token_ids, images], labels, verbose=0)
    assert accuracy == 1.0


@pytest.mark.parametrize("fusion", ["concat", "cross_attention", "grounded"])
def test_gradients_reach_every_branch(fusion, model_inputs, shapes_pairs, preprocessor):
    token_ids, images = model_inputs
    model = gemini_model("tiny", vocabulary_size=preprocessor.vocabulary_size, fusion=fusion)
    with tf.GradientTape() as tape:
        probabilities = model([token_ids[:16], images[:16]], training=True)
        loss = keras.losses.binary_crossentropy(shapes_pairs.labels[:16, None], probabilities)
    gradients = tape.gradient(loss, model.trainable_variables)
    dead = [
        v.path
        for v, g in zip(model.trainable_variables, gradients)
        if g is None or float(tf.reduce_max(tf.abs(g))) == 0.0
    ]
    assert dead == []
    for part in (
        model.text_encoder,
        model.image_encoder,
        model.fusion,
        model.head,
        model.text_projection,
        model.image_projection,
    ):
        assert part.trainable_variables
    # The contrastive scale/bias only train under a contrastive objective; plain BCE leaves them frozen.
    assert not model.contrastive_head.trainable


def test_listwise_trainer_learns_which_caption_is_true(preprocessor):
    from gemini_tf.data import shapes

    keras.utils.set_random_seed(0)
    groups = shapes.make_groups(32, "train", seed=2, group_size=3)
    dataset = groups.dataset(preprocessor, (64, 64), batch_size=8)
    model = gemini_model("tiny", vocabulary_size=preprocessor.vocabulary_size)
    matcher = ListwiseTrainer(model)
    matcher.compile(keras.optimizers.Adam(1e-3))
    history = matcher.fit(dataset, epochs=80, verbose=0)
    assert matcher.evaluate(dataset, return_dict=True, verbose=0)["group_accuracy"] == 1.0
    assert history.history["itc_loss"][-1] < history.history["itc_loss"][0]
    # The shared GeminiModel now ranks the true caption first on its own.
    (token_ids, images), _ = next(iter(dataset))
    probabilities = model.predict([tf.reshape(token_ids, (-1, 12)), tf.repeat(images, 3, 0)], verbose=0)
    assert (probabilities.reshape(-1, 3).argmax(1) == 0).all()


def relation_groups(num_groups: int, seed: int = 0):
    """Scenes with a true relation caption, its relation-word negative and its swapped negative."""
    from gemini_tf.data import shapes

    scenes = shapes.generate_scenes(4 * num_groups, "train", seed)
    rng = np.random.default_rng(seed)
    keep, texts = [], []
    for i in range(len(scenes)):
        objects = scenes.objects(i)
        if len(objects) < 2:
            continue
        caption = shapes.describe(objects, rng)
        while caption.kind != "relation":
            caption = shapes.describe(objects, rng)
        negatives = shapes.hard_negatives(caption, objects, rng)
        if {"relation", "swap"} <= set(negatives):
            keep.append(i)
            texts.append([caption.text(), negatives["relation"].text(), negatives["swap"].text()])
        if len(keep) == num_groups:
            break
    images = shapes.render(scenes, 64)[keep]
    return shapes.GroupSet(images, texts, [["positive", "relation", "swap"]] * len(keep))


@pytest.mark.parametrize("fusion", ["cross_attention", pytest.param("grounded", marks=pytest.mark.slow)])
def test_tiny_model_overfits_64_relation_groups(fusion, preprocessor):
    # Only word order and the relation word tell the three captions of a group apart.
    keras.utils.set_random_seed(0)
    groups = relation_groups(64)
    assert len(groups) == 64
    dataset = groups.dataset(preprocessor, (64, 64), batch_size=16)
    matcher = ListwiseTrainer(gemini_model("tiny", vocabulary_size=preprocessor.vocabulary_size, fusion=fusion))
    matcher.compile(keras.optimizers.Adam(1e-3))
    matcher.fit(dataset, epochs=150, verbose=0)
    assert matcher.evaluate(dataset, return_dict=True, verbose=0)["group_accuracy"] == 1.0


def test_schedule_warms_up_then_decays():
    schedule = learning_rate_schedule(1e-3, total_steps=100, warmup_fraction=0.1)
    rates = [float(schedule(step)) for step in (0, 5, 10, 50, 99)]
    assert rates[0] < rates[1] < rates[2] and rates[2] == pytest.approx(1e-3)
    assert rates[2] > rates[3] > rates[4] > 0


def test_unknown_strategy_is_named():
    with pytest.raises(ValueError, match="Unknown strategy 'tpu'"):
        get_strategy("tpu")


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import numpy as np, tensorflow as tf, keras
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from gemini_tf.models.gemini import gemini_model
    from gemini_tf.training import get_strategy

    rng = np.random.default_rng(0)
    token_ids = rng.integers(1, 50, (16, 12)).astype("int32")
    images = rng.random((16, 64, 64, 3)).astype("float32")
    labels = rng.integers(0, 2, 16).astype("float32")
    losses = []
    for name in ("default", "mirrored"):
        strategy = get_strategy(name)
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = gemini_model("tiny", vocabulary_size=50)
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy")
        history = model.fit([token_ids, images], labels, batch_size=16, epochs=1, shuffle=False, verbose=0)
        losses.append(history.history["loss"][0])
        print(name, strategy.num_replicas_in_sync, losses[-1])
    assert abs(losses[0] - losses[1]) < 1e-5, losses
    """
)


def test_mirrored_strategy_matches_one_device_on_one_batch():
    result = run_python(MIRRORED_SCRIPT)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "mirrored 2" in result.stdout


def _compiled(**overrides):
    model = gemini_model("tiny", vocabulary_size=50, **overrides)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def test_resuming_a_different_model_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    x = [rng.integers(1, 50, (8, 12)).astype("int32"), rng.random((8, 64, 64, 3)).astype("float32")]
    data = tf.data.Dataset.from_tensor_slices((tuple(x), rng.integers(0, 2, 8))).batch(4)
    settings = FitSettings(epochs=1, verbose=0)
    fit(_compiled(), data, None, settings, str(tmp_path))
    (tmp_path / "backup").mkdir(exist_ok=True)  # as if interrupted mid-run
    with pytest.raises(ValueError, match="interrupted run of a different model"):
        fit(_compiled(dropout=0.2), data, None, settings, str(tmp_path))


def test_steps_are_counted_one_way():
    settings = FitSettings(epochs=3, batch_size=32)
    assert settings.steps(100) == 3 * 4 and settings.steps(100, drop_remainder=True) == 3 * 3
    assert settings.steps(10, drop_remainder=True) == 3  # never zero: the schedule needs a step
    with pytest.raises(ValueError, match="Unknown strategy 'tpu'"):
        FitSettings(strategy="tpu")


class _FixedAttention:
    """A stand-in model whose attention maps are given: uniform, or all on one patch."""

    def __init__(self, patches: int, on: int | None = None):
        self.patches, self.on = patches, on

    def attention_maps(self, token_ids, images):
        batch, length = token_ids.shape
        if self.on is None:
            return np.full((batch, 2, length, self.patches), 1.0 / self.patches, "float32")
        maps = np.zeros((batch, 2, length, self.patches), "float32")
        maps[..., self.on] = 1.0
        return maps


def test_word_object_attention_is_chance_for_uniform_attention(preprocessor):
    from gemini_tf.bundle import GeminiBundle
    from gemini_tf.config import GeminiConfig
    from gemini_tf.data import shapes
    from gemini_tf.evaluation import word_object_attention

    config = GeminiConfig.from_preset("tiny")
    uniform = word_object_attention(GeminiBundle(_FixedAttention(16), preprocessor, config), num_scenes=60)
    assert uniform["word_object_attention"] == pytest.approx(uniform["chance"], abs=1e-6)
    assert 1 / 16 <= uniform["chance"] < 0.2  # one or two of 16 patches per named object set
    # All attention on the corner patch: share 1 exactly for the words whose objects sit in the corner cell.
    corner = word_object_attention(GeminiBundle(_FixedAttention(16, on=0), preprocessor, config), num_scenes=60)
    scenes = shapes.generate_scenes(60, "test", 0)
    rng = np.random.default_rng([0, 7919])
    in_corner, words = 0, 0
    for i in range(len(scenes)):
        objects = scenes.objects(i)
        caption = shapes.describe(objects, rng)
        first, second = shapes.referents(caption, objects)
        for phrase in (first, second) if caption.kind == "relation" else (first,):
            if phrase:  # a colour and a shape word name these objects
                words += 2
                in_corner += 2 * any(objects[k][3:] == (0, 0) for k in phrase)
    assert corner["word_object_attention"] == pytest.approx(in_corner / words)


def test_branch_free_schedule_equals_keras_cosine_decay_and_round_trips():
    from gemini_tf.training.schedule import WarmupCosineDecay

    schedule = learning_rate_schedule(1e-3, total_steps=100, warmup_fraction=0.1)
    assert isinstance(schedule, WarmupCosineDecay)
    reference = keras.optimizers.schedules.CosineDecay(0.0, 90, alpha=0.02, warmup_target=1e-3, warmup_steps=10)
    steps = [0, 1, 5, 9, 10, 11, 50, 99, 100, 150]
    np.testing.assert_allclose([float(schedule(s)) for s in steps], [float(reference(s)) for s in steps], rtol=1e-5)
    optimizer = keras.optimizers.deserialize(keras.optimizers.serialize(keras.optimizers.AdamW(schedule)))
    assert float(optimizer.learning_rate) == float(schedule(0))
    assert WarmupCosineDecay.from_config(schedule.get_config()).get_config() == schedule.get_config()
