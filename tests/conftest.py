import io
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from gemini_tf.data import shapes
from gemini_tf.preprocessing import TextPreprocessor, learn_vocabulary


def pytest_collection_modifyitems(items):
    """`make test` runs on two workers with `--dist loadgroup`: each test file is one group, so its
    module fixtures are built once, except the notebooks (the longest file), which alternate
    between two groups."""
    notebooks = 0
    for item in items:
        group = item.module.__name__
        if group == "test_notebooks" and hasattr(item, "callspec"):
            group, notebooks = f"{group}_{notebooks % 2}", notebooks + 1
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def shapes_pairs():
    return shapes.make_pairs(64, "train", seed=1)


@pytest.fixture(scope="session")
def preprocessor(shapes_pairs):
    texts = shapes_pairs.texts + [c.statement() for c in _all_caption_words()]
    return TextPreprocessor(learn_vocabulary(texts, 200), sequence_length=12)


def _all_caption_words():
    """Captions that use every word of the Shapes grammar, so the vocabulary covers it."""
    out = []
    for colour in shapes.COLOUR_NAMES:
        for shape in shapes.SHAPES:
            for relation in shapes.RELATIONS:
                out.append(shapes.Caption("relation", colour, shape, relation=relation, colour2=colour, shape2=shape))
            for size in shapes.SIZES:
                out.append(shapes.Caption("attribute", colour, shape, size=size))
            for count in range(1, 5):
                out.append(shapes.Caption("count", colour, shape, count=count))
    return out


@pytest.fixture(scope="session")
def model_inputs(shapes_pairs, preprocessor):
    token_ids = preprocessor(tf.constant(shapes_pairs.texts)).numpy()
    images = shapes_pairs.images.astype(np.float32) / 255.0
    return token_ids, images


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory):
    """A tiny ITM model trained for one short epoch (enough for export/parity tests)."""
    from gemini_tf.training import train

    return train(
        str(tmp_path_factory.mktemp("bundle")),
        epochs=1,
        train_scenes=96,
        validation_scenes=32,
        batch_size=16,
        verbose=0,
    )


@pytest.fixture(scope="session")
def exported(trained_bundle, tmp_path_factory):
    """(base_dir, saved_model_dir) of the trained bundle exported as `shapes/1`."""
    from gemini_tf.export.saved_model import export_saved_model

    base = tmp_path_factory.mktemp("saved_models")
    return str(base), export_saved_model(trained_bundle, "shapes", str(base))


def encode_image(array: np.ndarray, fmt: str, **options) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def contrastive_bundle(tmp_path_factory):
    """A tiny model trained for a few steps with ITC + ITM (has retrieval embeddings)."""
    import gemini_tf

    return gemini_tf.train(
        str(tmp_path_factory.mktemp("contrastive")),
        matching="contrastive",
        train_scenes=128,
        validation_scenes=32,
        epochs=1,
        batch_size=32,
        verbose=0,
    )


def jpeg_bytes(seed=0, size=32):
    buffer = io.BytesIO()
    pixels = (np.random.default_rng(seed).random((size, size, 3)) * 255).astype("uint8")
    Image.fromarray(pixels).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def bad_data(tmp_path):
    """A manifest folder with one row of every bad kind, plus good rows."""
    images = tmp_path / "images"
    images.mkdir()
    (images / "good0.jpg").write_bytes(jpeg_bytes(0))
    (images / "good1.jpg").write_bytes(jpeg_bytes(1))
    good = jpeg_bytes(2)
    (images / "corrupt.jpg").write_bytes(good[: len(good) // 2])  # truncated JPEG
    (images / "empty.jpg").write_bytes(b"")
    rows = [
        ("images/good0.jpg", "a photo", "yes"),
        ("images/corrupt.jpg", "a truncated photo", "no"),
        ("images/empty.jpg", "a 0-byte file", "true"),
        ("images/missing.jpg", "no such file", "0"),
        ("images/good1.jpg", "   ", "1"),
        ("images/good1.jpg", "an unsure label", "maybe"),
        ("images/good1.jpg", "another photo", "False"),
    ]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("image,text,label\n" + "".join(f"{image},{text},{label}\n" for image, text, label in rows))
    return manifest


def run_python(script: str):
    """Runs `script` in a fresh interpreter from the repo root (for tests that need their own
    TensorFlow device setup, like two logical CPUs for MirroredStrategy)."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": root},
    )
