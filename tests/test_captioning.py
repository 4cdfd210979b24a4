"""The describe task: caption decoder, samplers, training, metrics, export, TFLite and CLI."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from gemini_tf.bundle import load
from gemini_tf.caption_evaluation import caption_scores, most_frequent_caption, shapes_truth
from gemini_tf.cli import main
from gemini_tf.config import GeminiConfig
from gemini_tf.data import shapes
from gemini_tf.export.saved_model import export_saved_model
from gemini_tf.models.captioner import SAMPLERS, TokenAccuracy, caption_loss, caption_model, make_sampler

from conftest import encode_image

PROBE = os.path.join(os.path.dirname(__file__), "..", "gemini_tf", "export", "serving_probe.py")
SMALL = {"hidden_dim": 32, "intermediate_dim": 64, "num_heads": 2, "stem_channels": (8, 16, 16), "decoder_layers": 1}


@pytest.fixture(scope="module")
def scenes(shapes_pairs):
    """32 scenes with their true captions, as uint8 images and strings."""
    positive = np.flatnonzero(shapes_pairs.labels == 1)[:32]
    return shapes_pairs.images[positive], [shapes_pairs.texts[i] for i in positive]


@pytest.fixture(scope="module")
def overfit(scenes, preprocessor):
    """A small captioner fit to 32 captions with plain `model.fit` (teacher forcing)."""
    images, texts = scenes
    keras.utils.set_random_seed(0)
    config = GeminiConfig.from_preset("tiny", task="describe", vocabulary_size=preprocessor.vocabulary_size, **SMALL)
    model = caption_model(config, **preprocessor.caption_ids())
    model.compile(keras.optimizers.Adam(3e-3), caption_loss(), metrics=[TokenAccuracy()])
    ids = preprocessor(texts).numpy()
    pixels = images.astype("float32") / 255.0
    model.fit([ids[:, :-1], pixels], ids[:, 1:], epochs=300, batch_size=32, verbose=0)
    return model, pixels, ids


def test_a_tiny_decoder_overfits_32_captions_exactly(overfit, scenes, preprocessor):
    model, pixels, _ = overfit
    _, texts = scenes
    for sampler in ("greedy", "beam"):
        written = [t.decode() for t in preprocessor.detokenize(model.generate(pixels, make_sampler(sampler))).numpy()]
        assert written == texts, sampler


def test_samplers_stop_at_sep_and_respect_the_length_limit(overfit, preprocessor):
    model, pixels, ids = overfit
    end = preprocessor.caption_ids()["end_id"]
    for name in SAMPLERS:
        generated = np.asarray(model.generate(pixels, make_sampler(name, seed=1)))
        assert generated.shape == (len(pixels), model.sequence_length)
        for row in generated:
            stops = np.flatnonzero(row == end)
            assert len(stops) == 1, (name, row)  # every caption ends, once
            assert not row[stops[0] + 1 :].any(), (name, row)  # [PAD] after [SEP]
        cut = np.asarray(model.generate(pixels, make_sampler(name, seed=1), max_length=4))
        assert cut.shape == (len(pixels), 4)
        np.testing.assert_array_equal(cut[:, 0], preprocessor.caption_ids()["start_id"])
    with pytest.raises(ValueError, match="max_length"):
        model.generate(pixels, max_length=model.sequence_length + 1)


def test_the_causal_mask_hides_future_tokens(overfit):
    model, pixels, ids = overfit
    states = np.asarray(model.image_encoder(pixels[:4])["sequence"])
    changed = ids[:4].copy()
    changed[:, 5] = (changed[:, 5] + 7) % model.decoder.vocabulary_size
    before, after = (np.asarray(model.decoder([x, states])) for x in (ids[:4], changed))
    np.testing.assert_allclose(before[:, :5], after[:, :5], atol=1e-6)
    assert np.abs(before[:, 5:] - after[:, 5:]).max() > 1e-3


def test_captioner_round_trips_through_keras_file(overfit, tmp_path):
    model, pixels, ids = overfit
    path = str(tmp_path / "captioner.keras")
    model.save(path)
    restored = keras.saving.load_model(path, compile=False)
    np.testing.assert_array_equal(model([ids[:, :-1], pixels]), restored([ids[:, :-1], pixels]))
    np.testing.assert_array_equal(model.generate(pixels), restored.generate(pixels))


def test_detokenize_stops_at_sep_and_joins_wordpieces(preprocessor):
    ids = preprocessor(["a small red circle", "two green triangles"]).numpy()
    ids[1, 3] = preprocessor.caption_ids()["end_id"]  # [CLS] two green [SEP] ...
    assert [t.decode() for t in preprocessor.detokenize(ids).numpy()] == ["a small red circle", "two green"]


def test_shapes_truth_checks_captions_with_the_generator():
    objects = [(0, 0, 0, 0, 0), (1, 2, 1, 2, 0)]  # small red circle above large blue square
    assert shapes.parse_caption("a red circle above a blue square") is not None
    assert shapes.parse_caption("a red circle above") is None
    scores = shapes_truth(
        ["a red circle above a blue square", "a small red circle", "a blue square above a red circle", "red red"],
        [objects] * 4,
    )
    assert scores == {"true": 0.5, "grammatical": 0.75, "names_all_objects": 0.5}


def test_caption_scores_use_the_coco_scorers():
    perfect = caption_scores(["A dog runs on the grass."], [["a dog runs on the grass", "a brown dog"]])
    assert perfect["bleu_1"] == pytest.approx(1.0) and perfect["bleu_4"] == pytest.approx(1.0, abs=1e-6)
    references = [["a dog runs", "a dog running"], ["a man rides a bike", "a cyclist"]]
    good = caption_scores(["a dog runs", "a man rides a bike"], references)
    bad = caption_scores(["a man rides a bike", "a dog runs"], references)
    assert good["cider"] > bad["cider"] and good["bleu_4"] > bad["bleu_4"]
    assert most_frequent_caption(["A cat.", "a dog", "a cat"]) == "a cat"


@pytest.fixture(scope="module")
def describe_bundle(tmp_path_factory):
    from gemini_tf.training import train

    directory = str(tmp_path_factory.mktemp("describe"))
    train(
        directory, "shapes", task="describe", epochs=1, train_scenes=256, validation_scenes=32, batch_size=32, verbose=0
    )
    return directory


def test_train_describe_saves_an_evaluated_bundle(describe_bundle, scenes):
    bundle = load(describe_bundle)
    assert bundle.config.task == "describe" and bundle.trained_parts == ("image_encoder", "decoder")
    assert set(bundle.metrics) >= {"true", "grammatical", "names_all_objects", "examples"}
    images, _ = scenes
    captions = bundle.describe(images[:3], sampler="beam", num_beams=2)
    assert len(captions) == 3 and all(isinstance(c, str) for c in captions)
    with pytest.raises(ValueError, match="does not score"):
        bundle.predict(images[:1], ["a red circle"])


def test_describe_signature_serves_captions_and_rejects_bad_bytes(describe_bundle, scenes, tmp_path):
    bundle = load(describe_bundle)
    path = export_saved_model(bundle, "captioner", str(tmp_path))
    images, _ = scenes
    signatures = tf.saved_model.load(path).signatures
    encoded = tf.constant([encode_image(image, "PNG") for image in images[:4]])
    served = signatures["describe"](image_bytes=encoded)
    assert [c.decode() for c in served["caption"].numpy()] == bundle.describe(images[:4])
    assert set(signatures) >= {"serving_default", "describe", "describe_beam", "describe_tensors"}
    with pytest.raises(tf.errors.InvalidArgumentError, match="image_bytes: not a JPEG, PNG, GIF or BMP file"):
        signatures["describe"](image_bytes=tf.constant([b"not an image"]))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, PROBE, "ops", path], capture_output=True, text=True, env=env, cwd="/")
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]


def test_describe_tflite_runs_the_decoding_loop_with_builtins(describe_bundle, scenes, tmp_path):
    from gemini_tf.export.tflite import Captioner, export_tflite

    bundle = load(describe_bundle)
    path = export_saved_model(bundle, "captioner", str(tmp_path))
    (written,) = export_tflite(path, str(tmp_path / "tflite"), ("none",))
    assert os.path.basename(written) == "describe_none.tflite"
    images, _ = scenes
    assert Captioner(written).describe(images[:4]) == bundle.describe(images[:4])


def test_cli_describe_prints_captions_and_rejects_a_matcher(describe_bundle, trained_bundle, tmp_path, capsys, scenes):
    images, _ = scenes
    image_path = tmp_path / "scene.png"
    image_path.write_bytes(encode_image(images[0], "PNG"))
    assert main(["describe", "--model", describe_bundle, "--image", str(image_path), "--sampler", "beam"]) == 0
    assert '"caption": ' in capsys.readouterr().out
    matcher = str(tmp_path / "matcher")
    trained_bundle.save(matcher)
    assert main(["describe", "--model", matcher, "--image", str(image_path)]) == 2
    assert "--task describe" in capsys.readouterr().err


def test_describe_trains_on_a_caption_manifest_from_a_matchers_image_encoder(trained_bundle, tmp_path):
    """Any caption source works (here a CSV manifest of photos), and --init hands on the image encoder."""
    from PIL import Image

    from gemini_tf.training import train

    folder = tmp_path / "photos"
    folder.mkdir()
    rows = []
    for i in range(48):
        colour, name = [((200, 30, 30), "red"), ((30, 30, 200), "blue")][i % 2]
        Image.new("RGB", (48, 48), colour).save(folder / f"{i}.png")
        rows.append(f"{i}.png,a {name} photo\n")
    (folder / "captions.csv").write_text("image,text\n" + "".join(rows))
    matcher = str(tmp_path / "matcher")
    trained_bundle.save(matcher)
    bundle = train(
        str(tmp_path / "cap"),
        str(folder / "captions.csv"),
        task="describe",
        init=matcher,
        epochs=1,
        batch_size=8,
        verbose=0,
    )
    assert tuple(bundle.pretraining["init_parts"]) == ("image_encoder",)
    assert bundle.preprocessor.vocabulary == trained_bundle.preprocessor.vocabulary
    assert set(bundle.metrics) >= {"bleu_1", "bleu_4", "cider", "examples"}
    assert len(bundle.describe([str(folder / "0.png")])) == 1


def test_rerank_chooses_among_the_beams_by_the_matcher(describe_bundle, trained_bundle, scenes):
    bundle = load(describe_bundle)
    images, _ = scenes
    ids, log_probs = bundle.model.candidates(images[:4].astype("float32") / 255.0, num_beams=3)
    assert ids.shape[:2] == (4, 3) and log_probs.shape == (4, 3)
    assert np.all(np.diff(np.asarray(log_probs), axis=1) <= 1e-5)  # best first
    beams = np.asarray(bundle._texts(tf.reshape(ids, (12, -1)))).reshape(4, 3)
    chosen = bundle.describe(images[:4], num_beams=3, rerank=trained_bundle)
    assert all(caption in beams[i] for i, caption in enumerate(chosen))
    with pytest.raises(ValueError, match="matching"):
        bundle.describe(images[:1], rerank=bundle)
