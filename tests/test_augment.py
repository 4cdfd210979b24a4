import numpy as np
import tensorflow as tf

from gemini_tf.data import pipeline
from gemini_tf.preprocessing.augment import allows_flip, augment, random_resized_crop


def test_flip_is_refused_for_captions_that_name_a_side():
    texts = [
        "A dog jumps to the left",
        "a man on the RIGHT side",
        "a red circle left of a square",
        "two dogs play in the snow",
        "leftover pizza on a plate",
        "a bright light",
    ]
    assert [bool(allows_flip(tf.constant(t))) for t in texts] == [False, False, False, True, True, True]


def test_crop_output_shape_and_range():
    image = tf.constant(np.random.default_rng(0).integers(0, 256, (80, 100, 3)), tf.uint8)
    crop = random_resized_crop(image, (64, 48), tf.constant([1, 2]))
    assert crop.shape == (64, 48, 3) and crop.dtype == tf.float32
    assert float(tf.reduce_min(crop)) >= 0.0 and float(tf.reduce_max(crop)) <= 1.0


def test_side_captions_are_never_mirrored():
    # Left half black, right half white: a mirrored crop would be white on the left.
    image = np.zeros((64, 64, 3), np.uint8)
    image[:, 32:] = 255
    image = tf.constant(image)
    for seed in range(30):
        out = augment(image, tf.constant("a white square on the right"), (64, 64), tf.constant([seed, 0])).numpy()
        assert out[:, :8].mean() < out[:, -8:].mean()
    flipped = [
        augment(image, tf.constant("a white square"), (64, 64), tf.constant([seed, 0])).numpy() for seed in range(40)
    ]
    assert any(o[:, :8].mean() > o[:, -8:].mean() for o in flipped)  # other captions do get flipped


def test_the_same_seed_gives_the_same_crop_and_flip():
    image = tf.constant(np.random.default_rng(1).integers(0, 256, (80, 80, 3)), tf.uint8)
    text = tf.constant("two dogs play in the snow")
    first, again, other = (augment(image, text, (32, 32), tf.constant(s)).numpy() for s in ([3, 4], [3, 4], [5, 6]))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_augmented_caption_batches_change_every_epoch_and_repeat_for_a_seed(preprocessor):
    images = np.random.default_rng(2).integers(0, 256, (4, 80, 80, 3), dtype=np.uint8)
    texts = ["two dogs play in the snow"] * 4

    def batches():
        return pipeline.from_captions(images, texts, np.arange(4), preprocessor, (64, 64), 4, augment=True, seed=5)

    dataset = batches()
    epoch_1, epoch_2 = (next(iter(dataset))[0][1].numpy() for _ in range(2))
    assert not np.array_equal(epoch_1, epoch_2)  # new crops every epoch
    np.testing.assert_array_equal(next(iter(batches()))[0][1].numpy(), epoch_1)  # the same run again
