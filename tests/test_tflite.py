"""TFLite variants run in LiteRT (ai_edge_litert) and agree with Keras."""

import os

import numpy as np
import pytest

from gemini_tf.data import shapes
from gemini_tf.export.tflite import Predictor, convert, export_tflite, interpreter, representative_data


@pytest.fixture(scope="module")
def tflite_dir(exported, trained_bundle, tmp_path_factory):
    out = tmp_path_factory.mktemp("tflite")
    export_tflite(exported[1], str(out), representative_data=representative_data(trained_bundle, count=40))
    return out


@pytest.fixture(scope="module")
def pairs():
    return shapes.make_pairs(8, "test", seed=3)


def test_all_variants_are_written_with_their_assets(tflite_dir):
    names = set(os.listdir(tflite_dir))
    for flavour in ("tensors", "text"):
        for quantize in ("none", "dynamic", "float16", "int8"):
            assert (f"{flavour}_{quantize}.tflite" in names) == ((flavour, quantize) != ("text", "int8"))
    assert {"vocab.txt", "gemini_tf.json"} <= names
    sizes = {q: os.path.getsize(tflite_dir / f"tensors_{q}.tflite") for q in ("none", "dynamic", "float16")}
    assert sizes["dynamic"] < sizes["float16"] < sizes["none"]


def test_tensor_flavour_uses_builtin_ops_only(tflite_dir):
    runner = interpreter(str(tflite_dir / "tensors_none.tflite"))
    ops = {op["op_name"] for op in runner._get_ops_details()}
    assert not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"], ops


@pytest.mark.parametrize("flavour", ["tensors", "text"])
def test_float_tflite_matches_keras(tflite_dir, trained_bundle, pairs, flavour):
    keras_probabilities = trained_bundle.predict(pairs.images, pairs.texts)
    lite = Predictor(str(tflite_dir / f"{flavour}_none.tflite")).predict(pairs.images, pairs.texts)
    assert np.abs(lite - keras_probabilities).max() <= 1e-4


# Largest |TFLite - Keras| probability allowed per quantization: 2-10x what this fixture measures
# (float16 2e-4, dynamic 0.016, int8 0.068), so a broken conversion or calibration fails.
QUANTIZED_TOLERANCE = {"float16": 2e-3, "dynamic": 0.05, "int8": 0.15}


@pytest.mark.parametrize("quantize", sorted(QUANTIZED_TOLERANCE))
def test_quantized_variants_run_and_stay_close(tflite_dir, trained_bundle, pairs, quantize):
    keras_probabilities = trained_bundle.predict(pairs.images, pairs.texts)
    for flavour in ("tensors", "text") if quantize != "int8" else ("tensors",):
        lite = Predictor(str(tflite_dir / f"{flavour}_{quantize}.tflite")).predict(pairs.images, pairs.texts)
        assert np.isfinite(lite).all() and ((lite >= 0) & (lite <= 1)).all()
        assert np.abs(lite - keras_probabilities).max() <= QUANTIZED_TOLERANCE[quantize]


def test_predictor_reads_image_files_and_odd_texts(tflite_dir, tmp_path, pairs):
    from PIL import Image

    path = tmp_path / "scene.png"
    Image.fromarray(pairs.images[0]).save(path)
    predictor = Predictor(str(tflite_dir / "text_none.tflite"))
    out = predictor.predict([str(path)] * 3, ["", "a " * 5000, "🙂 ñandú"])
    assert np.isfinite(out).all()


def test_bad_conversion_arguments(exported):
    with pytest.raises(ValueError, match="Unknown quantization"):
        convert(exported[1], quantize="int4")
    with pytest.raises(ValueError, match="representative data"):
        convert(exported[1], quantize="int8")
    with pytest.raises(ValueError, match="calibrator cannot run the TF-Text"):
        convert(exported[1], quantize="int8", flavour="text")


def _photo_manifest(folder, colour, count=12, size=(40, 80)):
    from PIL import Image

    folder.mkdir()
    for i in range(count):
        Image.new("RGB", size[::-1], colour).save(folder / f"{i}.png")
    (folder / "m.csv").write_text("image,text,label\n" + "".join(f"{i}.png,photo {i},{i % 2}\n" for i in range(count)))
    return folder / "m.csv"


def test_int8_calibration_uses_the_models_own_training_data(tmp_path):
    """Calibration comes from the data the bundle was trained on, at its own (non-square) size."""
    from gemini_tf.bundle import GeminiBundle
    from gemini_tf.config import GeminiConfig
    from gemini_tf.data.sources import open_source
    from gemini_tf.models.gemini import gemini_model
    from gemini_tf.preprocessing import TextPreprocessor, learn_vocabulary

    red, blue = _photo_manifest(tmp_path / "red", (200, 0, 0)), _photo_manifest(tmp_path / "blue", (0, 0, 200))
    config = GeminiConfig.from_preset("tiny", image_size=(32, 64), task="classify")
    preprocessor = TextPreprocessor(learn_vocabulary([f"photo {i}" for i in range(12)], 40), config.sequence_length)
    model = gemini_model(config, vocabulary_size=preprocessor.vocabulary_size)
    bundle = GeminiBundle(model, preprocessor, config, data=open_source(str(red)).spec())
    samples = representative_data(bundle, count=5)
    assert len(samples) == 5
    for sample in samples:
        assert sample["image"].shape == (1, 32, 64, 3) and sample["token_ids"].shape == (1, config.sequence_length)
        np.testing.assert_allclose(sample["image"][0, 10, 10], [200 / 255, 0, 0], atol=1e-6)  # the red photos
    other = representative_data(bundle, data=str(blue), count=3)  # --calibration-data PATH
    np.testing.assert_allclose(other[0]["image"][0, 10, 10], [0, 0, 200 / 255], atol=1e-6)
    bundle.data = {}
    with pytest.raises(ValueError, match="--calibration-data"):
        representative_data(bundle)


def test_grounded_fusion_runs_in_int8_when_few_words_are_gated(tmp_path):
    """The grounded fusion's gate-weighted means: a caption with almost no gated word (a sum of
    gates near zero) runs in int8 LiteRT, where a division by that sum stopped with 'DIV failed'."""
    from gemini_tf.export.saved_model import export_saved_model
    from gemini_tf.training import train

    bundle = train(str(tmp_path / "grounded"), fusion="grounded", epochs=1, train_scenes=64, batch_size=16, verbose=0)
    gate = bundle.model.get_layer("fusion")._gate
    # Gates of 0 or 1 by word and head: calibrated sums span 0..tens, so a small sum quantizes to 0.
    kernel = np.random.default_rng(0).normal(0.0, 10.0, gate.kernel.shape)
    gate.kernel.assign(kernel.astype("float32"))
    saved_model = export_saved_model(bundle, "grounded", str(tmp_path / "export"))
    calibration = representative_data(bundle, count=20)
    (path,) = export_tflite(saved_model, str(tmp_path / "tflite"), ("int8",), ("tensors",), calibration)
    pairs = shapes.make_pairs(24, "test", seed=5)
    texts = [*pairs.texts, *["a red circle", "circle", "one blue square", "a"] * 6][: 2 * len(pairs.texts)]
    images = np.concatenate([pairs.images, pairs.images])[: len(texts)]
    lite = Predictor(path).predict(images, texts)
    assert np.isfinite(lite).all() and ((lite >= 0) & (lite <= 1)).all()


@pytest.mark.parametrize(
    "name, options",
    [
        # The quickstart's fusion: grounded + phrase evidence.
        ("phrase", {"fusion": "grounded", "config_overrides": {"phrase_evidence": True}}),
        # The plain-fit preset: BatchNorm stem, training-only shift (not in the inference graph),
        # phrase relations.
        ("tiny_grounded", {"preset": "tiny_grounded"}),
    ],
)
def test_grounded_models_export_to_builtin_tflite_that_matches_keras(tmp_path, name, options):
    """The grounded fusion's variants convert with builtins only, and their scores agree with Keras."""
    from gemini_tf.export.saved_model import export_saved_model
    from gemini_tf.training import train

    bundle = train(str(tmp_path / name), epochs=1, train_scenes=64, batch_size=16, verbose=0, **options)
    saved_model = export_saved_model(bundle, name, str(tmp_path / "export"))
    (path,) = export_tflite(saved_model, str(tmp_path / "tflite"), ("none",), ("tensors",))
    ops = {op["op_name"] for op in interpreter(path)._get_ops_details()}
    assert not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"], ops
    pairs = shapes.make_pairs(8, "test", seed=3)
    lite = Predictor(path).predict(pairs.images, pairs.texts)
    assert np.abs(lite - bundle.predict(pairs.images, pairs.texts)).max() <= 1e-4
