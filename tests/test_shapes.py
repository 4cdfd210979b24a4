import numpy as np
import pytest

from gemini_tf.data import shapes
from gemini_tf.data.sources import ShapesSource
from gemini_tf.data.splits import parts_of


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
            cell = images[i, row * 16 : (row + 1) * 16, col * 16 : (col + 1) * 16]
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
                    truth.colour2,
                    truth.shape2,
                    truth.colour,
                    truth.shape,
                )
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


def test_relation_rich_groups_meet_their_relation_and_swap_rivals():
    groups = shapes.make_groups(600, "train", seed=0, relation_share=0.95, rivals_first=("relation", "swap"))
    scenes = shapes.generate_scenes(600, "train", seed=0)
    several = np.flatnonzero(scenes.valid.sum(1) > 1)

    def is_relation(text):
        return any(f" {word} " in text for word in shapes.RELATIONS)

    relation = [i for i in several if is_relation(groups.texts[i][0])]
    assert len(relation) > 0.85 * len(several)  # 0.95 asked; held-out pairs are drawn again in training
    with_both = [i for i in relation if {"relation", "swap"} <= set(groups.kinds[i])]
    assert len(with_both) > 0.8 * len(relation)  # some relations have no false relation-word or swapped twin
    assert all(groups.kinds[i][1:3] == ["relation", "swap"] for i in with_both)
    default = shapes.make_groups(600, "train", seed=0)
    assert sum(is_relation(default.texts[i][0]) for i in several) < 0.55 * len(several)


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        shapes.generate_scenes(5, "dev")
    with pytest.raises(ValueError, match="multiple"):
        shapes.render(shapes.generate_scenes(2), 30)
    with pytest.raises(ValueError, match=r"relation_share must be in \[0, 1\)"):
        shapes.make_groups(5, "train", relation_share=1.0)


def _things(caption):
    return [(caption.colour, caption.shape)] + (
        [(caption.colour2, caption.shape2)] if caption.kind == "relation" else []
    )


def test_held_out_combinations_never_occur_in_training_data():
    """Checked over generated training scenes, captions, groups and every negative."""
    scenes = shapes.generate_scenes(4000, "train", seed=0)
    objects = {(shapes.COLOUR_NAMES[o[1]], shapes.SHAPES[o[0]]) for i in range(len(scenes)) for o in scenes.objects(i)}
    assert not objects & shapes.HELD_OUT_OBJECTS
    assert len(objects) == len(shapes.COLOUR_NAMES) * len(shapes.SHAPES) - len(shapes.HELD_OUT_OBJECTS)
    phrases = {f"{colour} {shape}" for colour, shape in shapes.HELD_OUT_OBJECTS}
    plurals = {f"{colour} {shape}s" for colour, shape in shapes.HELD_OUT_OBJECTS}
    pairs = shapes.make_pairs(3000, "train", seed=0, negatives="all")
    groups = shapes.make_groups(3000, "train", seed=0)
    relations = shapes.make_groups(3000, "train", seed=1, relation_share=0.95, rivals_first=("relation", "swap"))
    texts = pairs.texts + [t for group in groups.texts + relations.texts for t in group]
    assert not [t for t in texts if any(p in t for p in phrases | plurals)]
    # No training caption relates a held-out pair, in either order.
    for first, second in (tuple(pair) for pair in shapes.HELD_OUT_PAIRS):
        a, b = " ".join(first), " ".join(second)
        assert not [t for t in texts if a in t and b in t]
    assert not pairs.held_out.any()
    test = shapes.make_pairs(1000, "test", seed=0, negatives="all")
    assert 0.1 < test.held_out.mean() < 0.5  # the test split has both kinds of scenes
    assert any(p in t for t in test.texts for p in phrases)


def test_hold_out_false_trains_on_every_combination_and_keeps_the_test_scenes():
    scenes = shapes.generate_scenes(4000, "train", seed=0, hold_out=False)
    objects = {(shapes.COLOUR_NAMES[o[1]], shapes.SHAPES[o[0]]) for i in range(len(scenes)) for o in scenes.objects(i)}
    assert objects >= shapes.HELD_OUT_OBJECTS
    pairs = ShapesSource(scenes={"train": 2000}, hold_out=False).pairs("train")
    phrases = {f"{colour} {shape}" for colour, shape in shapes.HELD_OUT_OBJECTS}
    assert any(p in t for t in pairs.texts for p in phrases)
    assert pairs.held_out.any()
    # Validation and test do not depend on it; neither does the split of a scene's content.
    for part in ("validation", "test"):
        kept, full = (shapes.make_pairs(300, part, seed=0, hold_out=h) for h in (True, False))
        assert kept.texts == full.texts and np.array_equal(kept.images, full.images)
    assert set(parts_of(shapes.content_keys(scenes))) == {"train"}


@pytest.mark.parametrize("style, off_centre", [("shifted", 0.2), ("varied", 0.1)])
def test_other_styles_draw_the_same_scenes_differently(style, off_centre):
    scenes = shapes.generate_scenes(300, "test", seed=2)
    default, shifted = shapes.render(scenes), shapes.render(scenes, style=style)
    assert np.array_equal(default, shapes.render(scenes))  # deterministic
    assert (default != shifted).any(axis=(1, 2, 3)).all()
    centres, radii, colours, background = shapes.layout(scenes, 64, style)
    cell = 64 / scenes.grid
    home = (np.stack([scenes.row, scenes.col], -1) + 0.5) * cell
    moved = np.abs(centres - home)[scenes.valid]
    assert (moved > 0.25 * cell).mean() > off_centre  # objects leave their cells' centres: off the patch grid
    # Relations stay unambiguous: a different row is always at least half a cell away.
    for i in range(len(scenes)):
        rows, ys = scenes.row[i][scenes.valid[i]], centres[i][scenes.valid[i], 0]
        for a in range(len(rows)):
            for b in range(len(rows)):
                if rows[a] < rows[b]:
                    assert ys[b] - ys[a] >= 0.5 * cell
    assert len(np.unique(background, axis=0)) > 1 and len(np.unique(radii[scenes.valid])) > 2


def test_shapes_source_renders_training_scenes_in_its_train_style():
    source = ShapesSource(scenes={"train": 20, "validation": 20}, train_style="varied")
    assert source.part_style("train") == "varied" and source.part_style("validation") == "default"
    varied, plain = source.groups("train"), ShapesSource(scenes={"train": 20}).groups("train")
    assert varied.texts == plain.texts and not np.array_equal(varied.images, plain.images)
    with pytest.raises(ValueError, match="Unknown render style 'wobbly'"):
        ShapesSource(train_style="wobbly")


def test_referents_and_patch_coverage():
    objects = [(0, 0, 0, 0, 0), (1, 2, 1, 2, 1), (0, 0, 1, 3, 3)]  # (shape, colour, size, row, col)
    red_circle = shapes.Caption("attribute", "red", "circle", size="small")
    assert shapes.referents(red_circle, objects) == ([0], [])
    count = shapes.Caption("count", "red", "circle", count=2)
    assert shapes.referents(count, objects) == ([0, 2], [])
    above = shapes.Caption("relation", "red", "circle", relation="above", colour2="blue", shape2="square")
    assert shapes.referents(above, objects) == ([0], [1])
    scenes = shapes.Scenes(
        valid=np.array([[True, True, True, False]]),
        shape=np.array([[0, 1, 0, 0]]),
        colour=np.array([[0, 2, 0, 0]]),
        size=np.array([[0, 1, 1, 0]]),
        row=np.array([[0, 2, 3, 0]]),
        col=np.array([[0, 1, 3, 0]]),
        jitter=np.zeros((1, 4, 2)),
        grid=4,
    )
    coverage = shapes.patch_coverage(scenes, 64, (4, 4))
    assert [list(np.flatnonzero(c)) for c in coverage[0, :3]] == [[0], [9], [15]]
    assert not coverage[0, 3].any()


def test_a_seed_draws_the_same_scenes_in_every_process():
    """No draw may depend on Python's per-process hash seed (set order): the same seed, the same data."""
    import subprocess
    import sys

    script = (
        "import hashlib, numpy as np; from gemini_tf.data import shapes; "
        "g = shapes.make_groups(300, 'train', seed=4, group_size=4); "
        "print(hashlib.sha1(np.ascontiguousarray(g.images).tobytes() + repr(list(g.texts)).encode()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": seed}
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert len(digests) == 1 and "" not in digests
