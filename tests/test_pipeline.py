import io

import numpy as np
import pytest
from PIL import Image

from gemini_tf.data import pipeline


def test_from_arrays_yields_model_ready_batches(shapes_pairs, preprocessor):
    dataset = pipeline.from_arrays(
        shapes_pairs.images, shapes_pairs.texts, shapes_pairs.labels, preprocessor, (64, 64), batch_size=16
    )
    (token_ids, images), labels = next(iter(dataset))
    assert token_ids.shape == (16, 12) and token_ids.dtype.name == "int32"
    assert images.shape == (16, 64, 64, 3) and float(images.numpy().max()) <= 1.0
    np.testing.assert_array_equal(labels, shapes_pairs.labels[:16])
    np.testing.assert_array_equal(token_ids, preprocessor(shapes_pairs.texts[:16]))


def test_from_image_bytes_decodes_and_resizes(preprocessor):
    buffer = io.BytesIO()
    Image.fromarray(np.full((30, 50, 3), 255, np.uint8)).save(buffer, format="JPEG")
    dataset = pipeline.from_image_bytes(
        [buffer.getvalue()] * 2, ["a red circle", "a blue square"], [1, 0], preprocessor, (64, 64), batch_size=2
    )
    (token_ids, images), labels = next(iter(dataset))
    assert images.shape == (2, 64, 64, 3) and token_ids.shape == (2, 12)


def test_from_groups_labels_first_caption_true(preprocessor):
    images = np.zeros((3, 64, 64, 3), np.uint8)
    texts = [["a red circle", "a blue circle"]] * 3
    (token_ids, _), labels = next(iter(pipeline.from_groups(images, texts, preprocessor, (64, 64))))
    assert token_ids.shape == (3, 2, 12)
    np.testing.assert_array_equal(labels, [[1, 0]] * 3)


@pytest.mark.parametrize(
    "labels, message",
    [([0, 1, 2], r"0\.\.1; found \[2\]"), ([1, 1, 1], "both classes"), ([], "non-empty")],
)
def test_bad_labels_are_named(labels, message, preprocessor):
    n = len(labels)
    with pytest.raises(ValueError, match=message):
        pipeline.from_arrays(np.zeros((n, 64, 64, 3), np.uint8), ["a red circle"] * n, labels, preprocessor, (64, 64))


def test_empty_text_names_the_row(preprocessor):
    with pytest.raises(ValueError, match="row 1 has an empty text"):
        pipeline.from_arrays(np.zeros((2, 64, 64, 3), np.uint8), ["a red circle", " "], [0, 1], preprocessor, (64, 64))
