"""The NLVR world: three boxes of shapes (or towers of blocks), drawn like NLVR v1's images.

NLVR v1 (Suhr et al. 2017) pairs each sentence with six 400x100 renderings of one
scene and gives the scene itself as `structured_rep`: three boxes, each a list of
objects with `type`, `color`, `size`, `x_loc` and `y_loc`. Pre-training on many
synthetic scenes of the same world, then fine-tuning on the ~6k real pairs, needs
two things this module provides:

* `render_scene`: a `structured_rep` (or `Scene`) to the RGB pixels of the official
  PNG, uint8 [100, 400, 3]. benchmarks/nlvr_renderer.py compares it with every dev
  and test image.
* `sample_scene` / `sample_scenes`: random scenes of both kinds (objects placed
  anywhere; towers of stacked squares) with the statistics of the dev split.

What the official PNGs show (measured, see the benchmark):

* Boxes are 100x100, light grey (211), at x = 0, 150 and 300 on a grey (128) ground.
* `x_loc`, `y_loc` are the top-left corner of the object's `size`-pixel bounding box
  inside its box; triangles point up (apex at the top centre).
* Colours: Yellow (255, 255, 0), Black (0, 0, 0), #0099ff (0, 153, 255).
* Edges are anti-aliased with 4x4 supersampling; circles are drawn as polygons
  (`CIRCLE_VERTICES`).
* `<split>-<identifier>-<k>.png` shows the boxes in the order `BOX_ORDERS[k]`
  (`itertools.permutations` of 0, 1, 2): k = 0 is the `structured_rep` order.
* Free-placed objects never touch each other: bounding boxes are >= 1 pixel apart.
  Positions are uniform in 0..99, clipped so the object stays inside the box.
* Tower blocks are squares of size 20 at x = 40, listed bottom first, at y = 80, 59, 38, 17.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import os
from collections.abc import Sequence

import numpy as np

from gemini_tf.data.paths import data_dir
from gemini_tf.preprocessing.image import resize_and_scale

BOX = 100  # a box is BOX x BOX pixels
GAP = 50  # ground between boxes
HEIGHT, WIDTH = BOX, 3 * BOX + 2 * GAP
BACKGROUND = (211, 211, 211)  # inside a box
GROUND = (128, 128, 128)  # between boxes
COLOURS = {"yellow": (255, 255, 0), "black": (0, 0, 0), "blue": (0, 153, 255)}
REP_COLOURS = {"Yellow": "yellow", "Black": "black", "#0099ff": "blue"}  # structured_rep -> ours
COLOUR_NAMES = tuple(COLOURS)
SHAPES = ("circle", "square", "triangle")
SIZES = (10, 20, 30)
SUPERSAMPLE = 4  # samples per pixel along each axis
CIRCLE_VERTICES = {10: 16, 20: 16, 30: 36}  # fitted to the official anti-aliased edges
CIRCLE_SLACK = 0.01  # polygon corners this far outside the circle (fitted too)
BOX_ORDERS = tuple(itertools.permutations(range(3)))  # rendering k shows boxes BOX_ORDERS[k]

# Dev-split statistics (benchmarks/nlvr_renderer.py prints them).
TOWER_SHARE = 0.68  # 676 of 989 dev scenes are towers
OBJECTS_PER_BOX = (1, 7)  # free boxes: uniform in this range
TOWER_HEIGHTS = (1, 4)  # tower boxes: uniform in this range
BLOCK_SIZE, BLOCK_X, BLOCK_STEP = 20, 40, 21  # a block every 21 pixels up from y = 80


@dataclasses.dataclass(frozen=True)
class Item:
    """One object of a box; (x, y) is the top-left corner of its bounding box in the box."""

    shape: str
    colour: str
    size: int
    x: int
    y: int

    @property
    def touching_edge(self) -> bool:
        return self.x == 0 or self.y == 0 or self.x + self.size == BOX or self.y + self.size == BOX

    @property
    def touching_bottom(self) -> bool:
        return self.y + self.size == BOX

    @property
    def touching_corner(self) -> bool:
        return (self.x == 0 or self.x + self.size == BOX) and (self.y == 0 or self.y + self.size == BOX)


@dataclasses.dataclass(frozen=True)
class Scene:
    """Three boxes of items, in `structured_rep` order."""

    boxes: tuple[tuple[Item, ...], ...]

    @functools.cached_property
    def is_tower(self) -> bool:
        """Every box is a stack of blocks (NLVR's tower scenes)."""
        return all(
            [(i.shape, i.size, i.x, i.y) for i in box]
            == [("square", BLOCK_SIZE, BLOCK_X, BOX - BLOCK_SIZE - BLOCK_STEP * k) for k in range(len(box))]
            for box in self.boxes
        )

    def permuted(self, k: int) -> Scene:
        """The scene as NLVR's rendering k shows it."""
        return Scene(tuple(self.boxes[b] for b in BOX_ORDERS[k]))

    def to_rep(self) -> list[list[dict]]:
        """The scene as an NLVR `structured_rep`."""
        rep_colour = {ours: theirs for theirs, ours in REP_COLOURS.items()}
        return [
            [{"type": i.shape, "color": rep_colour[i.colour], "size": i.size, "x_loc": i.x, "y_loc": i.y} for i in box]
            for box in self.boxes
        ]


def _field(obj: dict, key: str, where: str, allowed: Sequence) -> object:
    if key not in obj:
        raise ValueError(f"{where}: missing field {key!r}")
    value = obj[key]
    if isinstance(value, bool) or value not in allowed:
        expected = f"an integer in {allowed[0]}..{allowed[-1]}" if isinstance(allowed, range) else f"one of {allowed}"
        raise ValueError(f"{where}[{key!r}]: {value!r} is not {expected}")
    return value


def parse_scene(structured_rep: Sequence) -> Scene:
    """A `Scene` from NLVR's `structured_rep`; ValueError naming the field when it is malformed."""
    if not isinstance(structured_rep, Sequence) or isinstance(structured_rep, str) or len(structured_rep) != 3:
        raise ValueError(f"structured_rep: expected a list of 3 boxes, got {structured_rep!r:.80}")
    boxes = []
    for b, box in enumerate(structured_rep):
        if not isinstance(box, Sequence) or isinstance(box, str):
            raise ValueError(f"structured_rep[{b}]: expected a list of objects, got {box!r:.80}")
        items = []
        for o, obj in enumerate(box):
            where = f"structured_rep[{b}][{o}]"
            if not isinstance(obj, dict):
                raise ValueError(f"{where}: expected an object (dict), got {obj!r:.80}")
            shape = _field(obj, "type", where, SHAPES)
            colour = REP_COLOURS[_field(obj, "color", where, tuple(REP_COLOURS))]
            size = _field(obj, "size", where, SIZES)
            x, y = (_field(obj, key, where, range(BOX - size + 1)) for key in ("x_loc", "y_loc"))
            items.append(Item(shape, colour, int(size), int(x), int(y)))
        boxes.append(tuple(items))
    return Scene(tuple(boxes))


def load_scenes(split: str = "dev", path: str | None = None) -> dict[str, Scene]:
    """The scenes of an NLVR split by sentence identifier (`path`: the nlvr folder, else $GEMINI_TF_DATA/nlvr)."""
    file = os.path.join(data_dir("nlvr", path), split, f"{split}.json")
    scenes = {}
    with open(file) as f:
        for line_number, line in enumerate(f, start=1):
            if line.strip():
                row = json.loads(line)
                missing = {"identifier", "structured_rep"} - set(row)
                if missing:
                    raise ValueError(f"{file}:{line_number}: missing field {sorted(missing)[0]!r}")
                try:
                    scenes[row["identifier"]] = parse_scene(row["structured_rep"])
                except ValueError as error:
                    raise ValueError(f"{file}:{line_number}: {error}") from error
    return scenes


@functools.cache
def coverage(shape: str, size: int) -> np.ndarray:
    """float32 [size, size]: the share of each pixel of the bounding box that the shape covers."""
    if shape == "square":
        return np.ones((size, size), np.float32)
    samples = (np.arange(size * SUPERSAMPLE) + 0.5) / SUPERSAMPLE
    x, y = np.meshgrid(samples, samples)
    half = size / 2
    if shape == "triangle":
        corners = np.array([[half, 0.0], [size, size], [0.0, size]])
    else:
        angles = 2 * np.pi * np.arange(CIRCLE_VERTICES[size]) / CIRCLE_VERTICES[size]
        corners = half + (half + CIRCLE_SLACK) * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    # The corners run clockwise on screen (y down): a sample is inside when no edge has it on its left.
    inside = np.ones_like(x, bool)
    for (x0, y0), (x1, y1) in zip(corners, np.roll(corners, -1, axis=0)):
        inside &= (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0) >= 0
    return inside.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3)).astype(np.float32)


def render_scenes(scenes: Sequence[Scene], image_size: tuple[int, int], chunk: int = 512) -> np.ndarray:
    """uint8 [N, *image_size, 3]: scenes drawn by `render_scene`, resized by the one image path
    (`resize_and_scale`, as real NLVR PNGs are) and stored as bytes."""
    images = np.empty((len(scenes), *image_size, 3), np.uint8)
    for start in range(0, len(scenes), chunk):
        drawn = np.stack([render_scene(scene) for scene in scenes[start : start + chunk]])
        images[start : start + chunk] = np.rint(resize_and_scale(drawn, image_size).numpy() * 255.0)
    return images


def render_scene(scene: Scene | Sequence) -> np.ndarray:
    """uint8 [HEIGHT, WIDTH, 3]: a `Scene` or `structured_rep` drawn like NLVR's rendering 0."""
    if not isinstance(scene, Scene):
        scene = parse_scene(scene)
    image = _empty_boxes().copy()
    for b, box in enumerate(scene.boxes):
        left = b * (BOX + GAP)
        for item in box:
            patch = image[item.y : item.y + item.size, left + item.x : left + item.x + item.size]
            alpha = coverage(item.shape, item.size)[..., None]
            patch[...] = np.rint(patch + alpha * (np.float32(COLOURS[item.colour]) - patch))
    return image


@functools.cache
def _empty_boxes() -> np.ndarray:
    image = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    image[:] = GROUND
    for b in range(3):
        image[:, b * (BOX + GAP) : b * (BOX + GAP) + BOX] = BACKGROUND
    return image


def pick(options: Sequence, rng: np.random.Generator):
    """One of `options`, uniformly (one `rng.random()` draw, so the sampler's stream stays simple)."""
    return options[int(rng.random() * len(options))]


def _uniform(bounds: tuple[int, int], rng: np.random.Generator) -> int:
    low, high = bounds
    return low + int(rng.random() * (high - low + 1))


def _free_box(rng: np.random.Generator, tries: int = 100) -> tuple[Item, ...]:
    """1-7 random objects, >= 1 pixel apart. Sizes are drawn first, so that crowding does not
    favour small objects, and drawn again if an object finds no room in `tries` positions."""
    count = _uniform(OBJECTS_PER_BOX, rng)
    while True:
        items: list[Item] = []
        for size in [pick(SIZES, rng) for _ in range(count)]:
            for _ in range(tries):
                x, y = (min(int(rng.random() * BOX), BOX - size) for _ in range(2))
                if all(_apart(x, y, size, i) for i in items):
                    items.append(Item(pick(SHAPES, rng), pick(COLOUR_NAMES, rng), size, x, y))
                    break
            else:
                break
        if len(items) == count:
            return tuple(items)


def _apart(x: int, y: int, size: int, item: Item) -> bool:
    """Whether a `size` object at (x, y) keeps >= 1 pixel from `item`'s bounding box."""
    return max(x - item.x - item.size, item.x - x - size, y - item.y - item.size, item.y - y - size) >= 1


def _tower(rng: np.random.Generator) -> tuple[Item, ...]:
    height = _uniform(TOWER_HEIGHTS, rng)
    y_of = [BOX - BLOCK_SIZE - BLOCK_STEP * k for k in range(height)]
    return tuple(Item("square", pick(COLOUR_NAMES, rng), BLOCK_SIZE, BLOCK_X, y) for y in y_of)


def sample_scene(rng: np.random.Generator, tower: bool | None = None) -> Scene:
    """A random scene: towers with probability TOWER_SHARE unless `tower` says which kind."""
    if tower is None:
        tower = rng.random() < TOWER_SHARE
    return Scene(tuple(_tower(rng) if tower else _free_box(rng) for _ in range(3)))


def sample_scenes(n: int, rng: np.random.Generator, tower_share: float = TOWER_SHARE) -> list[Scene]:
    """`n` random scenes, a `tower_share` of them towers."""
    return [sample_scene(rng, tower=rng.random() < tower_share) for _ in range(n)]
