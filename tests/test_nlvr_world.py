"""The NLVR world: rendering, parsing, sampling, and statements whose labels an independent parser confirms."""

import collections
import dataclasses
import os
import re

import numpy as np
import pytest
from PIL import Image

from gemini_tf.data import nlvr_statements as statements
from gemini_tf.data import nlvr_world as world
from gemini_tf.data.nlvr import load_nlvr

ROOT = os.environ.get("GEMINI_TF_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))


def obj(shape, color, size, x, y):
    return {"type": shape, "color": color, "size": size, "x_loc": x, "y_loc": y}


REP = [
    [obj("square", "Yellow", 20, 10, 10), obj("circle", "Black", 30, 50, 50)],
    [obj("triangle", "#0099ff", 20, 0, 80)],
    [obj("square", "Black", 20, 40, 80), obj("square", "Yellow", 20, 40, 59)],
]
TOWERS = [
    [obj("square", "Black", 20, 40, 80), obj("square", "Yellow", 20, 40, 59), obj("square", "Yellow", 20, 40, 38)],
    [obj("square", "#0099ff", 20, 40, 80)],
    [obj("square", "Yellow", 20, 40, 80), obj("square", "Black", 20, 40, 59)],
]


def test_render_puts_colours_where_the_rep_says():
    image = world.render_scene(REP)
    assert image.shape == (100, 400, 3) and image.dtype == np.uint8
    assert tuple(image[20, 20]) == (255, 255, 0)  # square centre (x_loc, y_loc: top-left corner)
    assert tuple(image[65, 65]) == (0, 0, 0)  # circle centre
    assert tuple(image[50, 50]) == world.BACKGROUND  # the circle's bounding-box corner is background
    assert tuple(image[95, 150 + 10]) == (0, 153, 255)  # triangle, second box starts at x = 150
    assert tuple(image[81, 150 + 2]) == world.BACKGROUND  # it points up: its top-left is empty
    assert tuple(image[5, 5]) == world.BACKGROUND and tuple(image[50, 125]) == world.GROUND
    assert tuple(image[90, 350]) == (0, 0, 0) and tuple(image[69, 350]) == (255, 255, 0)  # third box
    assert set(np.unique(image[:, 100:150].reshape(-1, 3), axis=0).ravel()) == {128}


def test_render_is_anti_aliased_and_box_orders_permute_boxes():
    scene = world.parse_scene(REP)
    edge = world.render_scene(scene)[50, 50:80, 2]  # the circle's top row: partial cover at its ends
    assert np.sum((edge > 0) & (edge < 211)) >= 4
    shown = world.render_scene(scene.permuted(3))  # BOX_ORDERS[3] == (1, 2, 0)
    original = world.render_scene(scene)
    assert np.array_equal(shown[:, :100], original[:, 150:250]) and np.array_equal(shown[:, 300:], original[:, :100])


@pytest.mark.parametrize(
    "rep, field",
    [
        (REP[:2], "expected a list of 3 boxes"),
        ([REP[0], "box", REP[2]], r"structured_rep\[1\]"),
        ([REP[0], [{"type": "circle", "size": 10, "x_loc": 0, "y_loc": 0}], REP[2]], "missing field 'color'"),
        ([REP[0], [obj("circle", "Red", 10, 0, 0)], REP[2]], r"\[1\]\[0\]\['color'\]: 'Red'"),
        ([REP[0], [obj("hexagon", "Black", 10, 0, 0)], REP[2]], r"\['type'\]"),
        ([REP[0], [obj("circle", "Black", 15, 0, 0)], REP[2]], r"\['size'\]: 15"),
        ([REP[0], [obj("circle", "Black", 30, 75, 0)], REP[2]], r"\['x_loc'\]: 75 is not an integer in 0..70"),
        ([REP[0], [obj("circle", "Black", 10, 0, "5")], REP[2]], r"\['y_loc'\]"),
    ],
)
def test_malformed_rep_is_a_clear_error(rep, field):
    with pytest.raises(ValueError, match=field):
        world.render_scene(rep)


def test_sampled_scenes_look_like_nlvr():
    scenes = world.sample_scenes(300, np.random.default_rng(0))
    towers = [s for s in scenes if s.is_tower]
    assert 0.55 < len(towers) / len(scenes) < 0.8
    for scene in scenes:
        assert world.parse_scene(scene.to_rep()) == scene
        for box in scene.boxes:
            low, high = world.TOWER_HEIGHTS if scene.is_tower else world.OBJECTS_PER_BOX
            assert low <= len(box) <= high
            for i, a in enumerate(box):
                assert 0 <= a.x <= 100 - a.size and 0 <= a.y <= 100 - a.size
                for b in box[i + 1 :]:  # bounding boxes at least one pixel apart
                    assert max(b.x - a.x - a.size, a.x - b.x - b.size, b.y - a.y - a.size, a.y - b.y - b.size) >= 1
    items = [item for s in scenes if not s.is_tower for box in s.boxes for item in box]
    assert {i.shape for i in items} == set(world.SHAPES) and {i.size for i in items} == set(world.SIZES)
    assert 0.2 < np.mean([i.touching_edge for i in items]) < 0.5  # dev: 0.35


def test_evaluator_on_hand_written_scenes():
    truths = {
        "There is a large black circle.": (REP, True),
        "There are exactly two yellow squares.": (REP, True),
        "There are exactly two objects touching the edge.": (REP, True),  # the triangle, the lower black square
        "There are at least three objects touching the bottom.": (REP, False),
        "There is no box with only blue objects.": (REP, False),
        "Each box has at most one circle.": (REP, True),
        "There is a blue triangle touching a corner.": (REP, True),
        "There is a black object touching a corner.": (REP, False),  # the lower black square: bottom only
        "Exactly one box has a blue triangle not touching any edge.": (REP, False),
        "There is a tower with exactly three blocks.": (TOWERS, True),
        "Each tower has a black block at the base.": (TOWERS, False),
        "Exactly two towers have a yellow block below the top.": (TOWERS, True),  # the first and the third
        "Exactly two towers have a black block below the top.": (TOWERS, False),  # only the first
        "There is a tower with a yellow block below the top.": (TOWERS, True),
        "Exactly two towers have at most two blocks.": (TOWERS, True),
        "There is a tower with a black block at the top.": (TOWERS, True),
    }
    for sentence, (rep, truth) in truths.items():
        assert statements.evaluate(sentence, rep) is truth, sentence
        assert statements.evaluate(sentence, world.parse_scene(rep).to_rep()) is truth
    with pytest.raises(ValueError, match="not a claim of the NLVR-world grammar"):
        statements.evaluate("There is a red hexagon.", REP)
    with pytest.raises(ValueError, match="not a sentence of the NLVR-world grammar"):
        statements.evaluate("Some box has a circle.", REP)


def test_every_generated_label_is_confirmed_by_the_independent_evaluator():
    examples = statements.make_examples(300, np.random.default_rng(2))
    assert len(examples) == 600 and sum(label for _, _, label in examples) == 300
    for scene, text, label in examples:
        assert statements.evaluate(text, scene.to_rep()) is label, text
    texts = " ".join(text for _, text, _ in examples)
    for phrase in [
        "There are exactly",
        "There is at least (one|1) ",
        "at most",
        "There is no ",
        "Each box has",
        "Each (grey )?box contains",
        "exactly [2-9] ",
        r" items?\b",
        "Each tower has",
        "Exactly one box has",
        "Exactly two towers have",
        "with only",
        "at the base",
        "at the top",
        "below the top",
        "touching the edge",
        "touching the bottom",
        "touching the base",
        "touching a corner",
        "not touching any edge",
        "large",
    ]:
        assert re.search(phrase, texts), phrase


def test_statements_before_pairing_are_not_one_sided_and_twins_differ_in_one_slot():
    rng = np.random.default_rng(3)
    scenes = world.sample_scenes(300, rng)
    raw = [statements.sample_statement(s, rng).truth(s) for s in scenes]
    assert 0.3 < np.mean(raw) < 0.7
    for scene in scenes[:100]:
        true, false = statements.statement_pair(scene, rng)
        assert true.truth(scene) and not false.truth(scene)
        differ = [f.name for f in dataclasses.fields(true) if getattr(true, f.name) != getattr(false, f.name)]
        assert len(differ) == 1
        if differ == ["claim"] and type(true.claim) is type(false.claim):
            a, b = true.claim, false.claim
            fields = [f.name for f in dataclasses.fields(a) if getattr(a, f.name) != getattr(b, f.name)]
            assert len(fields) == 1
            if fields == ["noun"]:
                nouns = [
                    f.name for f in dataclasses.fields(a.noun) if getattr(a.noun, f.name) != getattr(b.noun, f.name)
                ]
                assert len(nouns) == 1


def test_renderer_matches_official_pngs():
    path = os.path.join(ROOT, "nlvr")
    if not os.path.isdir(path):
        pytest.skip(f"nlvr not found at {path}: set GEMINI_TF_DATA to the shared data folder to run this test")
    scenes = world.load_scenes("dev", path)
    records, _ = load_nlvr(path, "dev")
    by_sentence = collections.defaultdict(list)
    for record in records:
        by_sentence[record.image_id].append(record)
    chosen = list(by_sentence)[::50][:20]  # ~20 sentences spread over the file; all six renderings of three
    for n, identifier in enumerate(chosen):
        for record in by_sentence[identifier][: 6 if n < 3 else 1]:
            k = int(record.image.rsplit("-", 1)[1].removesuffix(".png"))
            official = np.asarray(Image.open(record.image).convert("RGB"), np.int16)
            rendered = world.render_scene(scenes[identifier].permuted(k))
            share = np.mean(np.abs(rendered - official).max(axis=-1) <= 8)
            assert share > 0.99, (record.image, share)
