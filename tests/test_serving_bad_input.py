"""Bad input through serving_default: a sane output or a clean InvalidArgumentError, never NaN or a crash."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import encode_image


class ServingSession:
    """serving_default through a TF1 Session loaded with tag "serve", as the server does."""

    def __init__(self, saved_model_dir: str):
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        meta_graph = tf.compat.v1.saved_model.loader.load(self.session, ["serve"], saved_model_dir)
        signature = meta_graph.signature_def["serving_default"]
        self.inputs = {k: v.name for k, v in signature.inputs.items()}
        self.outputs = {k: v.name for k, v in signature.outputs.items()}

    def __call__(self, image_bytes: list[bytes], texts: list[bytes | str]):
        feed = {self.inputs["image_bytes"]: image_bytes, self.inputs["text"]: texts}
        return self.session.run(self.outputs, feed_dict=feed)


@pytest.fixture(scope="module")
def serving(exported):
    return ServingSession(exported[1])


def rgb(size=(64, 64)):
    return np.random.default_rng(0).integers(0, 255, (*size, 3), dtype=np.uint8)


def animated_gif() -> bytes:
    import io

    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


GOOD_IMAGES = {
    "1x1": lambda: encode_image(rgb((1, 1)), "PNG"),
    "4000x4000": lambda: encode_image(np.zeros((4000, 4000, 3), np.uint8), "JPEG"),
    "grayscale": lambda: encode_image(rgb()[..., 0], "PNG"),
    "rgba": lambda: encode_image(np.dstack([rgb(), np.full((64, 64), 128, np.uint8)]), "PNG"),
    "animated_gif": animated_gif,
    "bmp": lambda: encode_image(rgb(), "BMP"),
}
BAD_IMAGES = {  # name: (bytes, what the error must say)
    "empty": (lambda: b"", "image_bytes: empty"),
    "random_bytes": (lambda: b"\x00\x01" + np.random.default_rng(1).bytes(500), "image_bytes: not a JPEG"),
    "text_file": (lambda: b"hello, I am not an image", "image_bytes: not a JPEG"),
    "truncated_jpeg": (lambda: encode_image(rgb(), "JPEG")[:200], "JPEG|jpeg"),
    "truncated_png": (lambda: encode_image(rgb(), "PNG")[:100], "PNG|png"),
}


@pytest.mark.parametrize("name", GOOD_IMAGES)
def test_unusual_but_valid_images_give_sane_outputs(serving, name):
    out = serving([GOOD_IMAGES[name]()], ["a small red circle"])
    assert np.isfinite(out["probability"]).all() and 0 <= out["probability"][0] <= 1


@pytest.mark.parametrize("name", BAD_IMAGES)
def test_broken_images_raise_invalid_argument(serving, name):
    data, message = BAD_IMAGES[name]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        serving([data()], ["a small red circle"])


@pytest.mark.parametrize(
    "text", ["", "a " * 5000, b"\xff\xfe\x80 red \xc3", "🙂 ñandú"], ids=["empty", "10000_chars", "not_utf8", "emoji"]
)
def test_odd_texts_never_crash_or_give_nan(serving, text):
    try:
        out = serving([encode_image(rgb(), "PNG")], [text])
    except tf.errors.InvalidArgumentError:
        return
    assert np.isfinite(out["probability"]).all()


MAGIC = (b"\xff\xd8", b"\x89PNG", b"GIF8", b"BM")


def test_a_thousand_random_byte_strings_leave_the_session_serving(serving):
    """Random bytes are refused by name (never decoded into a guess), and the session keeps serving."""
    good_image = encode_image(rgb(), "PNG")
    expected = serving([good_image], ["a small red circle"])["probability"]
    outcomes = {"refused": 0, "decoder_error": 0, "answered": 0}

    @settings(max_examples=1000, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(
        st.one_of(
            st.binary(max_size=2048),
            st.sampled_from(MAGIC).flatmap(lambda magic: st.binary(max_size=512).map(lambda rest: magic + rest)),
        ),
        st.binary(max_size=64),
    )
    def throw(image_bytes, text):
        known_format = image_bytes.startswith(MAGIC)
        try:
            out = serving([image_bytes], [text])
        except tf.errors.InvalidArgumentError as error:
            if not known_format:  # empty or unknown bytes: our own check, naming the input
                assert "image_bytes:" in error.message
                outcomes["refused"] += 1
            else:  # a known header over garbage: the decoder's own error
                outcomes["decoder_error"] += 1
            return
        assert known_format, "bytes of no image format were decoded"
        assert np.isfinite(out["probability"]).all() and 0 <= out["probability"][0] <= 1
        outcomes["answered"] += 1

    throw()
    assert sum(outcomes.values()) >= 1000
    assert outcomes["refused"] > 100 and outcomes["decoder_error"] > 100  # both paths were exercised
    np.testing.assert_allclose(serving([good_image], ["a small red circle"])["probability"], expected)
