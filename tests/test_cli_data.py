"""CLI: contrastive training, index/retrieve, data convert, training from a manifest and TFRecords."""

import contextlib
import io
import json

import numpy as np
import pytest
from PIL import Image

from gemini_tf.cli import main
from gemini_tf.data import shapes
from gemini_tf.data.splits import parts_of
from gemini_tf.retrieval import Index

TINY = ["--epochs", "1", "--batch-size", "16", "--quiet"]


@pytest.fixture(scope="module")
def scene_folder(tmp_path_factory):
    """Shapes scenes saved as PNG files with a labelled statements manifest."""
    folder = tmp_path_factory.mktemp("scenes")
    pairs = shapes.make_pairs(48, "train", seed=5, statements=True)
    lines = ["image,text,label"]
    for i, (image, text, label) in enumerate(zip(pairs.images, pairs.texts, pairs.labels)):
        Image.fromarray(image).save(folder / f"{i}.png")
        lines.append(f"{i}.png,{text},{'yes' if label else 'no'}")
    (folder / "statements.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_contrastive_train_index_and_retrieve(tmp_path, scene_folder, capsys):
    model = tmp_path / "model"
    assert (
        main(
            [
                "train",
                "--matching",
                "contrastive",
                "--contrastive-loss",
                "sigmoid",
                "--train-scenes",
                "64",
                "--validation-scenes",
                "32",
                "--output-dir",
                str(model),
                *TINY,
            ]
        )
        == 0
    )
    assert json.loads((model / "gemini_tf.json").read_text())["config"]["contrastive_loss"] == "sigmoid"
    index = tmp_path / "gallery.npz"
    assert main(["index", "--model", str(model), "--images", str(scene_folder), "--out", str(index)]) == 0
    capsys.readouterr()
    assert (
        main(
            [
                "retrieve",
                "--model",
                str(model),
                "--index",
                str(index),
                "--text",
                "a small red circle",
                "--k",
                "3",
                "--rerank",
                "5",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(line.split()[-1].endswith(".png") for line in lines)
    # An image query needs a text index: one clear line, exit code 2.
    assert main(["retrieve", "--model", str(model), "--index", str(index), "--image", str(scene_folder / "0.png")]) == 2
    assert "needs an index of texts" in capsys.readouterr().err


def test_a_listwise_model_also_indexes_texts(tmp_path, capsys):
    model = tmp_path / "listwise"
    assert main(["train", "--train-scenes", "64", "--validation-scenes", "32", "--output-dir", str(model), *TINY]) == 0
    texts = tmp_path / "texts.txt"
    texts.write_text("a red circle\na blue square\n")
    assert main(["index", "--model", str(model), "--texts", str(texts), "--out", str(tmp_path / "i.npz")]) == 0
    assert "indexed 2 texts" in capsys.readouterr().out
    # The Beam engine (a bundle folder is exported to a temporary SavedModel) writes the same index.
    beam_args = ["index", "--model", str(model), "--texts", str(texts), "--out", str(tmp_path / "b.npz")]
    assert main([*beam_args, "--engine", "beam", "--beam-option", "direct_num_workers=1"]) == 0
    single, beam = Index.load(str(tmp_path / "i.npz")), Index.load(str(tmp_path / "b.npz"))
    assert beam.ids == single.ids
    np.testing.assert_allclose(beam.embeddings, single.embeddings, atol=1e-5, rtol=0)


def test_convert_then_train_a_classifier_from_tfrecords(tmp_path, scene_folder, capsys):
    shards = tmp_path / "shards"
    assert main(["data", "convert", str(scene_folder / "statements.csv"), "--out", str(shards), "--shards", "3"]) == 0
    assert "96 used" in capsys.readouterr().out
    beam = ["data", "convert", str(scene_folder / "statements.csv"), "--out", str(tmp_path / "b"), "--engine", "beam"]
    assert main([*beam, "--beam-option", "direct_num_workers"]) == 2
    assert "--beam-option takes KEY=VALUE" in capsys.readouterr().err
    model = tmp_path / "classifier"
    assert main(["train", "--task", "classify", "--data", str(shards), "--output-dir", str(model), *TINY]) == 0
    assert "accuracy" in capsys.readouterr().out


@pytest.fixture(scope="module")
def manifest_classifier(scene_folder, tmp_path_factory):
    """(model folder, manifest, what `train` logged) of a classifier trained on a manifest with two bad rows."""
    manifest = scene_folder / "with_bad_rows.csv"
    rows = (scene_folder / "statements.csv").read_text().splitlines()
    manifest.write_text("\n".join(rows + ["missing.png,a red circle,yes", "0.png,a red circle,maybe"]) + "\n")
    model = tmp_path_factory.mktemp("manifest_classifier")
    logged = io.StringIO()
    with contextlib.redirect_stderr(logged):  # reports are logged, not printed by the library
        assert main(["train", "--task", "classify", "--data", str(manifest), "--output-dir", str(model), *TINY]) == 0
    return model, manifest, logged.getvalue()


def test_train_a_classifier_from_a_manifest_reports_skipped_rows(tmp_path, manifest_classifier, capsys):
    _, manifest, logged = manifest_classifier
    assert "2 skipped" in logged and "missing_image: 1" in logged and "bad_label: 1" in logged
    assert (
        main(
            [
                "train",
                "--task",
                "classify",
                "--data",
                str(manifest),
                "--strict",
                "--output-dir",
                str(tmp_path / "strict"),
                *TINY,
            ]
        )
        == 2
    )
    assert f"{manifest}:98: image file not found" in capsys.readouterr().err


def test_evaluate_scores_held_out_images_only_and_says_which(scene_folder, manifest_classifier, capsys):
    model = manifest_classifier[0]
    manifest = scene_folder / "statements.csv"
    rows = [line.split(",")[0] for line in manifest.read_text().splitlines()[1:]]
    parts = parts_of(rows)
    for split, expected in (("test", (parts == "test").sum()), ("train", (parts == "train").sum()), ("all", len(rows))):
        args = ["evaluate", "--model", str(model), "--data", str(manifest), "--json"]
        assert main(args + (["--split", split] if split != "test" else [])) == 0  # default: test
        metrics = json.loads(capsys.readouterr().out)
        assert metrics["examples"] == expected and {"accuracy", "roc_auc"} <= set(metrics)
    assert main(["evaluate", "--model", str(model), "--data", str(manifest)]) == 0
    assert f"scored {(parts == 'test').sum()} examples of {manifest}, part 'test'" in capsys.readouterr().out


def test_too_little_data_for_one_batch_is_a_clear_error(tmp_path, scene_folder, capsys):
    manifest = tmp_path / "tiny.csv"
    manifest.write_text(
        "image,text,label\n" + "".join(f"{scene_folder / f'{i}.png'},a red circle,{i % 2}\n" for i in range(6))
    )
    assert (
        main(
            [
                "train",
                "--task",
                "classify",
                "--data",
                str(manifest),
                "--batch-size",
                "64",
                "--output-dir",
                str(tmp_path / "m"),
                "--quiet",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert f"manifest {manifest}: the train part has" in err and "fewer than one batch (64)" in err


def test_unknown_data_layout_is_one_line(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["train", "--data", str(tmp_path), "--output-dir", str(tmp_path / "m"), *TINY]) == 2
    assert "not a known data layout" in capsys.readouterr().err


def test_convert_names_missing_manifest(tmp_path, capsys):
    assert main(["data", "convert", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "o")]) == 2
    assert "Manifest not found" in capsys.readouterr().err
