import keras
import numpy as np
import pytest

from gemini_tf.config import FUSIONS, GeminiConfig
from gemini_tf.models.gemini import GeminiModel, gemini_model


@pytest.mark.parametrize("fusion", FUSIONS)
def test_keras_round_trip_gives_identical_outputs(tmp_path, fusion, model_inputs, preprocessor):
    model = gemini_model("tiny", vocabulary_size=preprocessor.vocabulary_size, fusion=fusion)
    token_ids, images = model_inputs
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, GeminiModel)
    np.testing.assert_array_equal(
        model.predict([token_ids, images], verbose=0), restored.predict([token_ids, images], verbose=0)
    )
    np.testing.assert_array_equal(model.embed_texts(token_ids), restored.embed_texts(token_ids))
    np.testing.assert_array_equal(model.embed_images(images), restored.embed_images(images))


def test_encoders_and_embeddings_work_on_their_own(model_inputs, preprocessor):
    model = gemini_model("tiny", vocabulary_size=preprocessor.vocabulary_size, embedding_dim=32)
    token_ids, images = model_inputs
    texts, pictures = np.asarray(model.embed_texts(token_ids[:3])), np.asarray(model.embed_images(images[:3]))
    assert texts.shape == pictures.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=-1), 1.0, atol=1e-5)
    out = model.image_encoder(images[:2])
    assert out["sequence"].shape == (2, 16, 64)


def test_match_logits_are_the_outputs_before_the_sigmoid(model_inputs, preprocessor):
    model = gemini_model("tiny", vocabulary_size=preprocessor.vocabulary_size)
    token_ids, images = model_inputs[0][:4], model_inputs[1][:4]
    logits = model.match_logits(model.text_encoder(token_ids), token_ids, model.image_encoder(images))
    np.testing.assert_allclose(
        keras.ops.sigmoid(logits), model.predict([token_ids, images], verbose=0)[:, 0], atol=1e-6
    )


@pytest.mark.parametrize("fusion", ["cross_attention", "grounded"])
def test_attention_maps_are_distributions(fusion, model_inputs, preprocessor):
    model = gemini_model("tiny", vocabulary_size=preprocessor.vocabulary_size, fusion=fusion)
    token_ids, images = model_inputs
    maps = keras.ops.convert_to_numpy(model.attention_maps(token_ids[:2], images[:2]))
    assert maps.shape == (2, 4, 12, 16)
    np.testing.assert_allclose(maps.sum(-1), 1.0, atol=1e-5)
    concat = gemini_model("tiny", vocabulary_size=preprocessor.vocabulary_size, fusion="concat")
    with pytest.raises(ValueError, match="no attention over the image"):
        concat.attention_maps(token_ids[:2], images[:2])


def test_heads_are_binary_and_more_classes_are_refused():
    binary = gemini_model("tiny", vocabulary_size=50, task="classify")
    assert binary.output_shape == (None, 1) and binary.task == "classify"
    with pytest.raises(ValueError, match="num_classes=3: .* multi-class classification is not supported"):
        gemini_model("tiny", vocabulary_size=50, task="classify", num_classes=3)


def test_non_square_images():
    model = gemini_model("tiny", vocabulary_size=50, image_size=(32, 128))
    out = model.predict([np.ones((2, 12), "int32"), np.zeros((2, 32, 128, 3), "float32")], verbose=0)
    assert out.shape == (2, 1)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"fusion": "sum"}, "Unknown fusion"),
        ({"task": "caption"}, "Unknown task"),
        ({"patch_size": 12}, "power of two"),
        ({"image_size": (60, 64)}, "multiple of patch_size"),
        ({"contrastive_loss": "triplet"}, "Unknown contrastive loss"),
    ],
)
def test_bad_config_values_are_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        GeminiConfig.from_preset("tiny", **overrides)
    with pytest.raises(ValueError, match="Unknown preset 'huge'"):
        gemini_model("huge")


def test_config_json_round_trip():
    config = GeminiConfig.from_preset("small", fusion="concat")
    import json

    assert GeminiConfig.from_dict(json.loads(config.to_json())) == config


def test_grounded_presets_are_their_sizes_plus_the_same_grounding_options():
    """small_grounded has small's widths and tiny_grounded's options, both from one GROUNDED_OPTIONS."""
    from gemini_tf.config import GROUNDED_OPTIONS, preset_fields

    for size in ("tiny", "small"):
        grounded = GeminiConfig.from_preset(f"{size}_grounded")
        assert {key: getattr(grounded, key) for key in GROUNDED_OPTIONS} == GROUNDED_OPTIONS
        assert grounded.sequence_length == GeminiConfig.from_preset(size).sequence_length
        plain = preset_fields(size, fusion_layers=GROUNDED_OPTIONS["fusion_layers"])
        assert preset_fields(f"{size}_grounded") == plain


def test_gated_mean_is_the_gate_weighted_mean_with_an_empty_entry():
    """sum(g * x) / (sum(g) + NOTHING): the weighted mean when gates are open, near 0 when all are shut."""
    from gemini_tf.models.grounded_fusion import NOTHING, gated_mean

    rng = np.random.default_rng(0)
    gates, values = rng.uniform(0.0, 1.0, (3, 5, 2)), rng.normal(size=(3, 5, 2))
    expected = (gates * values).sum(1) / (gates.sum(1) + NOTHING)
    np.testing.assert_allclose(gated_mean(np.log(gates), values), expected, rtol=1e-5)
    shut = gated_mean(np.full((1, 5, 2), np.log(1e-9)), values[:1])
    assert np.abs(np.asarray(shut)).max() < 1e-4


def test_tiny_grounded_preset_round_trips_and_shifts_only_training_images(tmp_path):
    """The plain-fit preset (BatchNorm stem, shifted training images, phrase relations) saves and
    loads with identical outputs; the shift is random in training and the identity at inference."""
    model = gemini_model("tiny_grounded", vocabulary_size=50, task="classify")
    assert model.fusion.phrase_relations and model.image_encoder.stem_norm == "batch"
    np.testing.assert_array_equal(model.head.score_weights, [0.0, 1.0])  # the grounded score alone at first
    rng = np.random.default_rng(0)
    token_ids = rng.integers(1, 50, (3, 12)).astype("int32")
    images = rng.random((3, 64, 64, 3)).astype("float32")
    path = str(tmp_path / "tiny_grounded.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.fusion.phrase_relations and loaded.image_encoder.train_shift == 0.03
    assert loaded.head.similarity_weight == 0.0
    np.testing.assert_array_equal(
        loaded.predict([token_ids, images], verbose=0), model.predict([token_ids, images], verbose=0)
    )
    # Its attention maps are the word grounding the relations read (no second grounding query).
    maps = np.asarray(model.attention_maps(token_ids, images))
    assert maps.shape == (3, 4, 12, 16) and model.fusion._query is None
    np.testing.assert_allclose(maps.sum(-1), 1.0, atol=1e-5)
    encoder = model.image_encoder
    np.testing.assert_array_equal(encoder(images, training=False)["sequence"], encoder(images)["sequence"])
    shifted = encoder.get_layer("train_shift")
    assert not np.allclose(shifted(images, training=True), images)
    np.testing.assert_array_equal(shifted(images, training=False), images)


def test_phrase_relations_and_stem_norm_are_checked():
    """Clear errors for options that cannot work: relations from phrases need the phrase evidence."""
    with pytest.raises(ValueError, match="set phrase_evidence=True"):
        GeminiConfig.from_preset("tiny", fusion="grounded", phrase_relations=True)
    with pytest.raises(ValueError, match="Unknown stem_norm 'group'"):
        GeminiConfig.from_preset("tiny", stem_norm="group")
    with pytest.raises(ValueError, match="train_shift is a fraction"):
        GeminiConfig.from_preset("tiny", train_shift=0.7)


def test_phrase_evidence_round_trips_and_needs_the_grounded_fusion(tmp_path):
    """`phrase_evidence` is a serialised part of the grounded fusion; other fusions refuse it."""
    config = GeminiConfig.from_preset("tiny", fusion="grounded", phrase_evidence=True)
    model = gemini_model(config, vocabulary_size=50)
    assert model.fusion.phrase_evidence
    token_ids = np.random.default_rng(0).integers(1, 50, (3, config.sequence_length)).astype("int32")
    images = np.random.default_rng(1).random((3, *config.image_size, 3)).astype("float32")
    path = str(tmp_path / "phrase.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.fusion.phrase_evidence
    np.testing.assert_allclose(
        loaded.predict([token_ids, images], verbose=0), model.predict([token_ids, images], verbose=0), atol=1e-6
    )
    with pytest.raises(ValueError, match="phrase_evidence is part of the grounded fusion"):
        GeminiConfig.from_preset("tiny", fusion="cross_attention", phrase_evidence=True)
