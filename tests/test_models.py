import numpy as np
import pytest

import keras

from gemini_tf.config import GeminiConfig
from gemini_tf.models.gemini import GeminiModel, gemini_model


@pytest.mark.parametrize("fusion", ["concat", "cross_attention"])
def test_keras_round_trip_gives_identical_outputs(tmp_path, fusion, model_inputs, preprocessor):
    model = gemini_model("tiny", vocabulary_size=preprocessor.vocabulary_size, fusion=fusion)
    token_ids, images = model_inputs
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, GeminiModel)
    np.testing.assert_array_equal(model.predict([token_ids, images], verbose=0),
                                  restored.predict([token_ids, images], verbose=0))


def test_encoders_work_on_their_own(model_inputs, preprocessor):
    model = gemini_model("tiny", vocabulary_size=preprocessor.vocabulary_size)
    token_ids, images = model_inputs
    assert model.text_embeddings(token_ids[:3]).shape == (3, 64)
    assert model.image_embeddings(images[:3]).shape == (3, 64)
    out = model.image_encoder(images[:2])
    assert out["sequence"].shape == (2, 16, 64)


def test_cross_attention_maps_are_distributions(model_inputs, preprocessor):
    model = gemini_model("tiny", vocabulary_size=preprocessor.vocabulary_size)
    token_ids, images = model_inputs
    maps = keras.ops.convert_to_numpy(model.cross_attention_maps(token_ids[:2], images[:2]))
    assert maps.shape == (2, 4, 12, 16)
    np.testing.assert_allclose(maps.sum(-1), 1.0, atol=1e-5)
    concat = gemini_model("tiny", vocabulary_size=preprocessor.vocabulary_size, fusion="concat")
    with pytest.raises(ValueError, match="no cross-attention"):
        concat.cross_attention_maps(token_ids[:2], images[:2])


def test_classification_head_shapes():
    binary = gemini_model("tiny", vocabulary_size=50, task="classify")
    assert binary.output_shape == (None, 1) and binary.task == "classify"
    multi = gemini_model("tiny", vocabulary_size=50, task="classify", num_classes=3)
    assert multi.output_shape == (None, 3)


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
