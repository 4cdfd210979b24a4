import json
import os

import numpy as np
import pytest
from PIL import Image

from gemini_tf.cli import main
from gemini_tf.data import shapes

from conftest import run_python

TINY_RUN = ["--epochs", "1", "--train-scenes", "64", "--validation-scenes", "32", "--batch-size", "16", "--quiet"]


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "model"
    assert main(["train", "--output-dir", str(out), *TINY_RUN]) == 0
    return out


def test_train_writes_a_loadable_bundle(trained_dir):
    assert {"model.keras", "vocab.txt", "gemini_tf.json"} <= set(os.listdir(trained_dir))
    meta = json.loads((trained_dir / "gemini_tf.json").read_text())
    assert meta["config"]["fusion"] == "cross_attention" and "acc_positive" in meta["metrics"]


def test_a_fresh_process_loads_a_bundle_with_only_import_gemini_tf(trained_dir):
    result = run_python(f"import gemini_tf; print(type(gemini_tf.load({str(trained_dir)!r}).model).__name__)")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("GeminiModel")


def test_evaluate_prints_metrics_per_negative_kind(trained_dir, capsys):
    assert main(["evaluate", "--model", str(trained_dir), "--scenes", "40", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"accuracy", "roc_auc", "random", "hard", "acc_swap", "acc_colour"} <= set(metrics)


def test_predict_image_file_and_text(trained_dir, tmp_path, capsys):
    scenes = shapes.generate_scenes(1, "test")
    path = tmp_path / "scene.png"
    Image.fromarray(shapes.render(scenes)[0]).save(path)
    assert main(["predict", "--model", str(trained_dir), "--image", str(path), "--text", "a small red circle"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert 0.0 <= answer["probability"] <= 1.0 and answer["label"] in ("match", "no_match")


def test_classify_task_with_concat_on_every_combination(tmp_path):
    argv = [
        "train",
        "--task",
        "classify",
        "--fusion",
        "concat",
        "--all-combinations",
        "--output-dir",
        str(tmp_path / "m"),
    ]
    assert main([*argv, *TINY_RUN]) == 0
    meta = json.loads((tmp_path / "m" / "gemini_tf.json").read_text())
    assert meta["label_names"] == ["false", "true"]
    assert meta["data"]["statements"] and not meta["data"]["hold_out"]  # what it was trained on


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--data", "imagenet"], "No such data path: imagenet"),
        (["train", "--task", "classify", "--matching", "contrastive"], "use matching 'binary'"),
        (["train", "--itm-warmup", "1.5"], "itm_warmup is a share of the training steps in [0, 1)"),
        (
            ["train", "--matching", "listwise", "--momentum-distill", "0.99", "--train-scenes", "64"],
            "options of matching 'contrastive', not 'listwise'",
        ),
        (["evaluate", "--model", "/nonexistent/dir"], "No such model directory"),
    ],
)
def test_bad_arguments_get_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv, value",
    [
        (["train", "--task", "caption"], "caption"),
        (["train", "--preset", "huge"], "huge"),
        (["train", "--fusion", "sum"], "sum"),
        (["train", "--matching", "groups"], "groups"),
        (["evaluate", "--model", "m", "--split", "dev"], "dev"),
    ],
)
def test_unknown_choices_are_rejected_by_argparse_with_the_choices(argv, value, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    assert f"invalid choice: '{value}' (choose from" in capsys.readouterr().err


def test_the_command_starts_quietly(tmp_path):
    """No TensorFlow C++ start-up logging before the command's own output (unless asked for)."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gemini_tf",
            "predict",
            "--model",
            str(tmp_path),
            "--image",
            "x.png",
            "--text",
            "a red circle",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == ["gemini-tf predict: error: Image file not found: x.png"]
    loud = subprocess.run(
        [sys.executable, "-c", "import tensorflow as tf; tf.constant(1) + 1"],
        capture_output=True,
        text=True,
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "0"},
    )
    assert loud.stderr.strip()  # the logging this test expects to be silenced does exist


def test_predict_bad_inputs(trained_dir, tmp_path, capsys):
    not_image = tmp_path / "notes.png"
    not_image.write_text("hello")
    good = tmp_path / "ok.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(good)
    cases = [
        (["--image", str(tmp_path / "missing.png"), "--text", "a red circle"], "Image file not found"),
        (["--image", str(not_image), "--text", "a red circle"], "Not a readable image"),
        (["--image", str(good), "--text", "   "], "empty"),
    ]
    for extra, message in cases:
        assert main(["predict", "--model", str(trained_dir), *extra]) == 2
        assert message in capsys.readouterr().err


def test_model_dir_without_a_gemini_model(tmp_path, capsys):
    (tmp_path / "model.keras").write_text("")
    assert main(["evaluate", "--model", str(tmp_path)]) == 2
    assert "holds no gemini_tf model" in capsys.readouterr().err


def test_export_saved_model_then_tflite(trained_dir, tmp_path, capsys):
    base = tmp_path / "serving"
    assert main(["export", "--model", str(trained_dir), "--name", "shapes", "--base-dir", str(base)]) == 0
    assert (
        main(
            [
                "export",
                "--model",
                str(trained_dir),
                "--name",
                "shapes",
                "--base-dir",
                str(base),
                "--format",
                "tflite",
                "--quantize",
                "none",
                "dynamic",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"SavedModel: {base}/shapes/1" in out and f"SavedModel: {base}/shapes/2" in out
    assert (base / "shapes" / "tflite" / "tensors_dynamic.tflite").is_file()
    assert (base / "shapes" / "tflite" / "text_none.tflite").is_file()
    assert (
        main(["export", "--model", str(trained_dir), "--name", "shapes", "--base-dir", str(base), "--version", "1"])
        == 2
    )
    assert "never overwrite" in capsys.readouterr().err


def test_int8_export_warns_and_calibrates_on_the_models_own_data(trained_dir, tmp_path, capsys):
    base = tmp_path / "serving"
    argv = ["export", "--model", str(trained_dir), "--name", "shapes", "--base-dir", str(base)]
    assert main([*argv, "--format", "tflite", "--quantize", "int8"]) == 0
    captured = capsys.readouterr()
    assert "int8: on this model family" in captured.err and "dynamic-range" in captured.err
    assert (base / "shapes" / "tflite" / "tensors_int8.tflite").is_file()
