"""CLI: contrastive training, index/retrieve, data convert, training from a manifest and TFRecords."""

import json

import pytest
from PIL import Image

from gemini_tf.cli import main
from gemini_tf.data import shapes

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
    assert main(["train", "--matching", "contrastive", "--loss", "sigmoid", "--train-scenes", "64",
                 "--validation-scenes", "32", "--output-dir", str(model), *TINY]) == 0
    assert (model / "matcher.keras").is_file()
    index = tmp_path / "gallery.npz"
    assert main(["index", "--model", str(model), "--images", str(scene_folder), "--out", str(index)]) == 0
    capsys.readouterr()
    assert main(["retrieve", "--model", str(model), "--index", str(index),
                 "--text", "a small red circle", "--k", "3", "--rerank", "5"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(line.split()[-1].endswith(".png") for line in lines)
    # An image query needs a text index: one clear line, exit code 2.
    assert main(["retrieve", "--model", str(model), "--index", str(index),
                 "--image", str(scene_folder / "0.png")]) == 2
    assert "needs an index of texts" in capsys.readouterr().err


def test_retrieve_with_a_model_without_embeddings_is_refused(tmp_path, capsys):
    model = tmp_path / "groups"
    assert main(["train", "--train-scenes", "64", "--validation-scenes", "32", "--output-dir", str(model), *TINY]) == 0
    texts = tmp_path / "texts.txt"
    texts.write_text("a red circle\na blue square\n")
    assert main(["index", "--model", str(model), "--texts", str(texts), "--out", str(tmp_path / "i.npz")]) == 2
    assert "--matching contrastive" in capsys.readouterr().err


def test_convert_then_train_a_classifier_from_tfrecords(tmp_path, scene_folder, capsys):
    shards = tmp_path / "shards"
    assert main(["data", "convert", str(scene_folder / "statements.csv"), "--out", str(shards), "--shards", "3"]) == 0
    assert "96 used" in capsys.readouterr().out
    model = tmp_path / "classifier"
    assert main(["train", "--task", "classify", "--data", str(shards), "--output-dir", str(model), *TINY]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_train_a_classifier_from_a_manifest_reports_skipped_rows(tmp_path, scene_folder, capsys):
    manifest = scene_folder / "with_bad_rows.csv"
    rows = (scene_folder / "statements.csv").read_text().splitlines()
    manifest.write_text("\n".join(rows + ["missing.png,a red circle,yes", "0.png,a red circle,maybe"]) + "\n")
    assert main(["train", "--task", "classify", "--data", str(manifest),
                 "--output-dir", str(tmp_path / "m"), *TINY]) == 0
    out = capsys.readouterr().out
    assert "2 skipped" in out and "missing_image: 1" in out and "bad_label: 1" in out
    assert main(["evaluate", "--model", str(tmp_path / "m"), "--data", str(scene_folder / "statements.csv"),
                 "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"accuracy", "roc_auc", "precision", "recall"} <= set(metrics)
    assert main(["train", "--task", "classify", "--data", str(manifest), "--strict",
                 "--output-dir", str(tmp_path / "strict"), *TINY]) == 2
    assert f"{manifest}:98: image file not found" in capsys.readouterr().err


def test_unknown_data_layout_is_one_line(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["train", "--data", str(tmp_path), "--output-dir", str(tmp_path / "m"), *TINY]) == 2
    assert "not a known data layout" in capsys.readouterr().err


def test_convert_names_missing_manifest(tmp_path, capsys):
    assert main(["data", "convert", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "o")]) == 2
    assert "Manifest not found" in capsys.readouterr().err
