import numpy as np
import pytest

from gemini_tf.data import shapes


def test_generator_is_deterministic():
    a = shapes.make_pairs(50, "train", seed=3)
    b = shapes.make_pairs(50, "train", seed=3)
    c = shapes.make_pairs(50, "train", seed=4)
    assert a.texts == b.texts and np.array_equal(a.images, b.images)
    assert a.texts != c.texts


def test_splits_hold_different_scenes():
    def signatures(split):
        scenes = shapes.generate_scenes(500, split, seed=0)
        return {tuple(sorted(scenes.objects(i))) for i in range(len(scenes))}

    train, test = signatures("train"), signatures("test")
    assert not train & test
    assert not signatures("validation") & test


def test_positive_captions_are_true_and_render_objects():
    scenes = shapes.generate_scenes(200, "train", seed=0)
    images = shapes.render(scenes, 64)
    rng = np.random.default_rng(0)
    for i in range(len(scenes)):
        objects = scenes.objects(i)
        assert 1 <= len(objects) <= shapes.MAX_OBJECTS
        assert shapes.is_true(shapes.describe(objects, rng), objects)
        # Every object paints at least a few pixels of its colour.
        for _, colour, _, row, col in objects:
            cell = images[i, row * 16:(row + 1) * 16, col * 16:(col + 1) * 16]
            rgb = np.array(shapes.COLOURS[shapes.COLOUR_NAMES[colour]])
            assert (cell == rgb).all(-1).sum() >= 5


def _differences(a: shapes.Caption, b: shapes.Caption) -> set[str]:
    return {f for f in a._fields if getattr(a, f) != getattr(b, f)}


@pytest.mark.parametrize("seed", [0, 1])
def test_hard_negatives_differ_in_exactly_one_property_and_are_false(seed):
    scenes = shapes.generate_scenes(300, "train", seed=seed)
    rng = np.random.default_rng(seed)
    seen = set()
    for i in range(len(scenes)):
        objects = scenes.objects(i)
        truth = shapes.describe(objects, rng)
        for kind, negative in shapes.hard_negatives(truth, objects, rng).items():
            seen.add(kind)
            assert not shapes.is_true(negative, objects), (truth, negative)
            changed = _differences(truth, negative)
            if kind == "swap":
                assert (negative.colour, negative.shape, negative.colour2, negative.shape2) == (
                    truth.colour2, truth.shape2, truth.colour, truth.shape)
            elif kind == "colour":
                assert changed in ({"colour"}, {"colour2"})
            elif kind == "shape":
                assert changed in ({"shape"}, {"shape2"})
            else:
                assert changed == {kind}
    assert seen == set(shapes.HARD_KINDS)


def test_pairs_labels_and_statements():
    pairs = shapes.make_pairs(100, "test", negatives="all", statements=True)
    assert set(pairs.kinds) == {"positive", *shapes.NEGATIVE_KINDS}
    assert all(label == (kind == "positive") for label, kind in zip(pairs.labels, pairs.kinds))
    assert all(t.startswith(("there ", "a ")) for t in pairs.texts)
    assert pairs.images.shape == (len(pairs), 64, 64, 3) and pairs.images.dtype == np.uint8


def test_groups_put_the_true_caption_first():
    groups = shapes.make_groups(50, "train", group_size=4)
    assert all(k[0] == "positive" and "positive" not in k[1:] for k in groups.kinds)
    assert all(len(set(t)) == 4 for t in groups.texts)


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        shapes.generate_scenes(5, "dev")
    with pytest.raises(ValueError, match="multiple"):
        shapes.render(shapes.generate_scenes(2), 30)
