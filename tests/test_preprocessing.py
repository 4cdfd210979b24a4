import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from gemini_tf.preprocessing import (
    TextPreprocessor,
    learn_vocabulary,
    load_image_file,
    preprocess_image_bytes,
    preprocess_images,
)


def test_tokenizer_round_trip_with_accents_and_punctuation():
    vocabulary = learn_vocabulary(["the cafe is open.", "a red circle, above it!"] * 20, 100)
    preprocessor = TextPreprocessor(vocabulary, sequence_length=12)
    tokens = preprocessor.tokens(["Thé CAFÉ is ópen.", "A red circle, above it!"])
    assert tokens[0] == ["[CLS]", "the", "cafe", "is", "open", ".", "[SEP]"]
    assert tokens[1] == ["[CLS]", "a", "red", "circle", ",", "above", "it", "!", "[SEP]"]


def test_pads_truncates_and_marks_unknown_words():
    preprocessor = TextPreprocessor(learn_vocabulary(["a red circle"] * 10, 50), sequence_length=6)
    ids = preprocessor(tf.constant(["a red circle", "a red red red red red red", "zebra"])).numpy()
    assert ids.shape == (3, 6) and ids.dtype == np.int32
    assert ids[0, -1] == 0  # padded
    assert preprocessor.vocabulary[ids[1, -1]] == "[SEP]"  # truncated, still closed
    # WordPiece: a word with an unknown character is one [UNK]; known words split into pieces.
    assert preprocessor.tokens(["zebra", "circler", "reda"]) == [
        ["[CLS]", "[UNK]", "[SEP]"],
        ["[CLS]", "circle", "##r", "[SEP]"],
        ["[CLS]", "red", "##a", "[SEP]"],
    ]


def test_preprocessor_config_round_trip():
    preprocessor = TextPreprocessor(learn_vocabulary(["a red circle"] * 10, 50), 8)
    clone = TextPreprocessor.from_config(preprocessor.get_config())
    texts = tf.constant(["a red circle", "red"])
    assert np.array_equal(preprocessor(texts), clone(texts))


def test_vocabulary_must_have_reserved_tokens():
    with pytest.raises(ValueError, match=r"\[PAD\]"):
        TextPreprocessor(["a", "b"], 8)
    with pytest.raises(ValueError, match="empty"):
        learn_vocabulary([])


def _encode(array: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP"])
def test_any_image_format_and_mode_becomes_rgb(fmt, mode):
    if fmt == "JPEG" and mode == "RGBA":
        pytest.skip("JPEG has no alpha channel")
    array = np.random.default_rng(0).integers(0, 255, (40, 30, 3), dtype=np.uint8)
    image = Image.fromarray(array).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    out = preprocess_image_bytes(tf.constant(buffer.getvalue()), (64, 64)).numpy()
    assert out.shape == (64, 64, 3) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_bytes_and_arrays_share_one_path():
    array = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    from_bytes = preprocess_image_bytes(tf.constant(_encode(array, "PNG")), (64, 64)).numpy()
    from_array = preprocess_images(array[None], (64, 64))[0]
    np.testing.assert_allclose(from_bytes, from_array, atol=1e-7)
    np.testing.assert_allclose(from_array, array / 255.0, atol=1e-7)


def test_animated_gif_takes_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    out = load_image_file(str(path), (8, 8))
    assert out[..., 0].mean() > 0.9 and out[..., 2].mean() < 0.1


def test_bad_image_files_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_image_file(str(tmp_path / "missing.png"), (64, 64))
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        load_image_file(str(empty), (64, 64))
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    with pytest.raises(ValueError, match="Not a readable image"):
        load_image_file(str(text), (64, 64))


def test_every_shapes_text_fits_the_tiny_sequence_length(preprocessor):
    from gemini_tf.config import GeminiConfig

    from conftest import _all_caption_words

    texts = [t for c in _all_caption_words() for t in (c.text(), c.statement())]
    untruncated = TextPreprocessor(preprocessor.vocabulary, sequence_length=64)(texts).numpy()
    assert (untruncated != 0).sum(1).max() <= GeminiConfig.from_preset("tiny").sequence_length
    assert "[UNK]" not in {preprocessor.vocabulary[i] for i in untruncated.ravel()}


def test_packing_matches_keras_hub_start_end_packer():
    import keras_hub

    vocabulary = learn_vocabulary(["a red circle above a blue square, today!"] * 10, 60)
    texts = ["", "a", "a red circle", "a red circle above a blue square today " * 3, "zebra ünïcode"]
    for length in (2, 3, 6, 12):
        preprocessor = TextPreprocessor(vocabulary, sequence_length=length)
        packer = keras_hub.layers.StartEndPacker(
            length, start_value=vocabulary.index("[CLS]"), end_value=vocabulary.index("[SEP]"), pad_value=0
        )
        expected = packer(preprocessor._tokenizer.tokenize(tf.constant(texts)))
        np.testing.assert_array_equal(preprocessor(texts), expected)
