"""The embedded Shapes world: scenes, rendering, captions, hard negatives, statements.

Every scene places 1-4 objects (shape x colour x size) in distinct cells of a
`grid x grid` layout, with a little jitter inside the cell. Captions come from a
small grammar:

* attribute: "a small red circle"          (some object has all three properties)
* relation:  "a red circle above a blue square"
* count:     "two yellow circles"          (exactly that many such objects)

For every true caption `hard_negatives` produces captions that differ from it in
exactly one thing (a colour, a shape, a size, a count, the relation word, or the
relation's arguments swapped) and are checked to be false for the scene, so a
"negative" is never accidentally true. `statement` rephrases a caption as a
yes/no claim for the binary classification task.

Splits are disjoint by construction: a scene's part is `data.splits`' rule applied
to its content (objects and cells, jitter ignored), so the same arrangement can
never appear in both train and test.

Systematic generalisation is built in: a few colour-shape combinations
(`HELD_OUT_OBJECTS`, e.g. "red triangle") never occur in training scenes, and a
few pairs of seen combinations (`HELD_OUT_PAIRS`) are never related by a
training caption — positives and negatives alike. Validation and test scenes
have everything, and `PairSet.held_out` marks the pairs that need them.
`hold_out=False` trains on every combination instead (validation and test stay
the same scenes), for tasks that are not about systematic generalisation.

`render(..., style="shifted")` draws the same scenes differently (objects off
the grid cells, other sizes within a class, other shades, another background):
a model that binds words to objects should not care.
"""

from __future__ import annotations

import dataclasses
import re
from typing import NamedTuple

import numpy as np

from gemini_tf.data import pipeline
from gemini_tf.data.labelled import LabelledPairs
from gemini_tf.data.splits import PARTS, parts_of

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 100, 235),
    "yellow": (235, 215, 40),
    "purple": (160, 60, 210),
}
COLOUR_NAMES = tuple(COLOURS)
SHAPES = ("circle", "square", "triangle")
SIZES = ("small", "large")
RELATIONS = ("above", "below", "left of", "right of")
OPPOSITE = {"above": "below", "below": "above", "left of": "right of", "right of": "left of"}
NUMBERS = ("zero", "one", "two", "three", "four")
NEGATIVE_KINDS = ("random", "colour", "shape", "size", "count", "relation", "swap")
HARD_KINDS = NEGATIVE_KINDS[1:]
SHARE = {"train": 0.8, "validation": 0.1, "test": 0.1}  # of scenes drawn, by `data.splits`
# Never in training scenes or captions (validation and test have them): see `mentions_held_out`.
HELD_OUT_OBJECTS = frozenset({("red", "triangle"), ("blue", "circle"), ("yellow", "square")})
HELD_OUT_PAIRS = frozenset(
    {frozenset({("green", "circle"), ("purple", "square")}), frozenset({("purple", "triangle"), ("green", "square")})}
)
GRID = 4
BACKGROUND = (24, 24, 32)
MAX_OBJECTS = 4
RELATION_SHARE = 0.4  # of the true captions of scenes with two or more objects


@dataclasses.dataclass
class Scenes:
    """A batch of scenes as parallel arrays of shape [num_scenes, MAX_OBJECTS].

    `valid` marks real objects; `row`/`col` index grid cells; `shape`, `colour`
    and `size` index `SHAPES`, `COLOUR_NAMES` and `SIZES`; `jitter` is the
    object's offset from its cell centre in pixels at unit cell size.
    """

    valid: np.ndarray
    shape: np.ndarray
    colour: np.ndarray
    size: np.ndarray
    row: np.ndarray
    col: np.ndarray
    jitter: np.ndarray  # [num_scenes, MAX_OBJECTS, 2], in [-1, 1]
    grid: int

    def __len__(self) -> int:
        return len(self.valid)

    def objects(self, index: int) -> list[tuple[int, int, int, int, int]]:
        """(shape, colour, size, row, col) for each object of scene `index`."""
        keep = self.valid[index]
        return list(
            zip(
                self.shape[index][keep].tolist(),
                self.colour[index][keep].tolist(),
                self.size[index][keep].tolist(),
                self.row[index][keep].tolist(),
                self.col[index][keep].tolist(),
            )
        )

    def subset(self, indices: np.ndarray) -> Scenes:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return Scenes(**{k: (v if k == "grid" else v[indices]) for k, v in fields.items()})


class Caption(NamedTuple):
    """A structured caption; `text()` renders it as English.

    kind is "attribute", "relation" or "count". Unused fields are None.
    """

    kind: str
    colour: str
    shape: str
    size: str | None = None
    count: int | None = None
    relation: str | None = None
    colour2: str | None = None
    shape2: str | None = None

    def text(self) -> str:
        if self.kind == "attribute":
            return f"a {self.size} {self.colour} {self.shape}"
        if self.kind == "count":
            noun = self.shape if self.count == 1 else self.shape + "s"
            return f"{NUMBERS[self.count]} {self.colour} {noun}"
        return f"a {self.colour} {self.shape} {self.relation} a {self.colour2} {self.shape2}"

    def statement(self) -> str:
        """The caption as a yes/no claim ("there is a small red circle")."""
        if self.kind == "attribute":
            return f"there is a {self.size} {self.colour} {self.shape}"
        if self.kind == "count":
            verb = "is" if self.count == 1 else "are"
            return f"there {verb} exactly {self.text()}"
        return f"a {self.colour} {self.shape} is {self.relation} a {self.colour2} {self.shape2}"


def _matches(obj, colour: str, shape: str, size: str | None = None) -> bool:
    s, c, z, _, _ = obj
    return SHAPES[s] == shape and COLOUR_NAMES[c] == colour and (size is None or SIZES[z] == size)


def _related(a, b, relation: str) -> bool:
    (_, _, _, ra, ca), (_, _, _, rb, cb) = a, b
    return {
        "above": ra < rb,
        "below": ra > rb,
        "left of": ca < cb,
        "right of": ca > cb,
    }[relation]


def is_true(caption: Caption, objects: list) -> bool:
    """Whether `caption` describes a scene given as `Scenes.objects(i)`."""
    if caption.kind == "attribute":
        return any(_matches(o, caption.colour, caption.shape, caption.size) for o in objects)
    if caption.kind == "count":
        return sum(_matches(o, caption.colour, caption.shape) for o in objects) == caption.count
    return any(
        _matches(a, caption.colour, caption.shape)
        and _matches(b, caption.colour2, caption.shape2)
        and _related(a, b, caption.relation)
        for i, a in enumerate(objects)
        for j, b in enumerate(objects)
        if i != j
    )


def parse_caption(text: str) -> Caption | None:
    """The `Caption` whose `text()` is exactly `text`, or None when `text` is not a sentence of the
    grammar (what a generated caption is checked against, with `is_true`)."""
    words = text.strip().lower().split()
    colours, shapes_ = "|".join(COLOUR_NAMES), "|".join(SHAPES)
    relations = "|".join(RELATIONS)
    sentence = " ".join(words)
    patterns = (
        (rf"a (?P<size>small|large) (?P<colour>{colours}) (?P<shape>{shapes_})", "attribute"),
        (rf"(?P<count>{'|'.join(NUMBERS[1:])}) (?P<colour>{colours}) (?P<shape>{shapes_})s?", "count"),
        (
            rf"a (?P<colour>{colours}) (?P<shape>{shapes_}) (?P<relation>{relations}) "
            rf"a (?P<colour2>{colours}) (?P<shape2>{shapes_})",
            "relation",
        ),
    )
    for pattern, kind in patterns:
        match = re.fullmatch(pattern, sentence)
        if match:
            fields = match.groupdict()
            if "count" in fields:
                fields["count"] = NUMBERS.index(fields["count"])
            caption = Caption(kind, **fields)
            return caption if caption.text() == sentence else None
    return None


def referents(caption: Caption, objects: list) -> tuple[list[int], list[int]]:
    """Indices of the objects the caption's first and second noun phrase name (second: relations only).

    Attribute: the objects with its colour, shape and size; count: with its
    colour and shape; relation: the subjects that stand in the relation to some
    object of the second phrase, and those objects.
    """
    if caption.kind != "relation":
        size = caption.size if caption.kind == "attribute" else None
        return [i for i, o in enumerate(objects) if _matches(o, caption.colour, caption.shape, size)], []
    pairs = [
        (i, j)
        for i, a in enumerate(objects)
        for j, b in enumerate(objects)
        if i != j
        and _matches(a, caption.colour, caption.shape)
        and _matches(b, caption.colour2, caption.shape2)
        and _related(a, b, caption.relation)
    ]
    return sorted({i for i, _ in pairs}), sorted({j for _, j in pairs})


def patch_coverage(
    scenes: Scenes, image_size: int, grid_size: tuple[int, int], style: str = "default", seed: int = 0
) -> np.ndarray:
    """bool [num_scenes, MAX_OBJECTS, rows * columns]: the patches each object's bounding box overlaps."""
    centres, radii, _, _ = layout(scenes, image_size, style, seed)
    rows, columns = grid_size
    size_y, size_x = image_size / rows, image_size / columns
    top, bottom = (centres[..., 0] - radii) // size_y, (centres[..., 0] + radii) // size_y
    left, right = (centres[..., 1] - radii) // size_x, (centres[..., 1] + radii) // size_x
    row, column = np.divmod(np.arange(rows * columns), columns)
    inside = (
        (row >= top[..., None])
        & (row <= bottom[..., None])
        & (column >= left[..., None])
        & (column <= right[..., None])
    )
    return inside & scenes.valid[..., None]


def mentions_held_out(caption: Caption) -> bool:
    """Whether a caption names a held-out colour-shape combination or relates a held-out pair."""
    things = [(caption.colour, caption.shape)]
    if caption.kind == "relation":
        things.append((caption.colour2, caption.shape2))
        if frozenset(things) in HELD_OUT_PAIRS:
            return True
    return any(thing in HELD_OUT_OBJECTS for thing in things)


def generate_scenes(
    num_scenes: int, split: str = "train", seed: int = 0, grid: int = GRID, hold_out: bool = True
) -> Scenes:
    """Draws `num_scenes` scenes belonging to `split`, deterministically from `seed`.

    With `hold_out`, training scenes never hold a `HELD_OUT_OBJECTS` combination
    (such an object gets another shape before the scene's part is decided).
    """
    if split not in PARTS:
        raise ValueError(f"Unknown split {split!r}; expected one of {list(PARTS)}.")
    if grid * grid < MAX_OBJECTS:
        raise ValueError(f"grid={grid} has fewer than {MAX_OBJECTS} cells.")
    rng = np.random.default_rng([seed, PARTS.index(split)])
    kept: list[Scenes] = []
    total = 0
    while total < num_scenes:
        draw = _draw_scenes(rng, max(64, int(1.5 * (num_scenes - total) / SHARE[split])), grid)
        if split == "train" and hold_out:
            _replace_held_out_objects(draw, rng)
        draw = draw.subset(np.flatnonzero(parts_of(content_keys(draw)) == split))
        kept.append(draw)
        total += len(draw)
    merged = Scenes(
        **{
            f.name: (grid if f.name == "grid" else np.concatenate([getattr(s, f.name) for s in kept]))
            for f in dataclasses.fields(Scenes)
        }
    )
    return merged.subset(np.arange(num_scenes))


def _draw_scenes(rng: np.random.Generator, n: int, grid: int) -> Scenes:
    num_objects = rng.integers(1, MAX_OBJECTS + 1, size=n)
    valid = np.arange(MAX_OBJECTS)[None, :] < num_objects[:, None]
    # Distinct cells: the first MAX_OBJECTS entries of a random permutation.
    cells = np.argsort(rng.random((n, grid * grid)), axis=1)[:, :MAX_OBJECTS]
    return Scenes(
        valid=valid,
        shape=rng.integers(0, len(SHAPES), size=(n, MAX_OBJECTS)),
        colour=rng.integers(0, len(COLOURS), size=(n, MAX_OBJECTS)),
        size=rng.integers(0, len(SIZES), size=(n, MAX_OBJECTS)),
        row=cells // grid,
        col=cells % grid,
        jitter=rng.uniform(-1.0, 1.0, size=(n, MAX_OBJECTS, 2)),
        grid=grid,
    )


def _replace_held_out_objects(scenes: Scenes, rng: np.random.Generator) -> None:
    """Gives every object of a held-out colour-shape combination another (seen) shape, in place."""
    for colour, shape in sorted(HELD_OUT_OBJECTS):  # sorted: the same draws whatever the hash seed
        held = (scenes.colour == COLOUR_NAMES.index(colour)) & (scenes.shape == SHAPES.index(shape))
        allowed = [i for i, name in enumerate(SHAPES) if (colour, name) not in HELD_OUT_OBJECTS]
        scenes.shape[held] = rng.choice(allowed, size=int(held.sum()))


def content_keys(scenes: Scenes) -> list[str]:
    """Each scene's content (objects and cells, jitter ignored) as a string: the split rule's key."""
    cells = scenes.grid * scenes.grid
    code = (
        ((scenes.shape * len(COLOURS) + scenes.colour) * len(SIZES) + scenes.size) * cells
        + scenes.row * scenes.grid
        + scenes.col
        + 1
    )
    code = np.sort(np.where(scenes.valid, code, 0), axis=1).astype(np.uint64)
    base = np.uint64(len(SHAPES) * len(COLOURS) * len(SIZES) * cells + 1)
    signature = np.zeros(len(scenes), dtype=np.uint64)
    for k in range(MAX_OBJECTS):
        signature = signature * base + code[:, k]
    return [f"shapes/{scenes.grid}/{s}" for s in signature.tolist()]


@dataclasses.dataclass(frozen=True)
class RenderStyle:
    """How scenes are drawn; lengths are in cells.

    offset: the whole arrangement moves by up to this much (one draw per image);
    jitter: each object moves by up to this much (None: it stays inside its cell);
    small / large: radius range of each size class; shade: each object's colour
    moves by up to this much per channel; background: colour, +- background_noise.
    """

    offset: float = 0.0
    jitter: float | None = None
    small: tuple[float, float] = (0.22, 0.22)
    large: tuple[float, float] = (0.40, 0.40)
    shade: int = 0
    background: tuple[int, int, int] = BACKGROUND
    background_noise: int = 0


STYLES = {
    "default": RenderStyle(),
    # The same scenes drawn differently: off the grid cells, other sizes, shades and background.
    "shifted": RenderStyle(
        offset=0.35,
        jitter=0.2,
        small=(0.17, 0.28),
        large=(0.33, 0.44),
        shade=30,
        background=(44, 38, 30),
        background_noise=8,
    ),
    # Training-time randomisation: every image moves, resizes and reshades its objects and tints
    # its background, in ranges around the default look that overlap "shifted" without matching it.
    "varied": RenderStyle(
        offset=0.3,
        jitter=0.15,
        small=(0.18, 0.27),
        large=(0.34, 0.43),
        shade=25,
        background=BACKGROUND,
        background_noise=20,
    ),
}


def check_style(style: str) -> None:
    """A clear error for a render style that `STYLES` does not have."""
    if style not in STYLES:
        raise ValueError(f"Unknown render style {style!r}; choose one of {sorted(STYLES)}.")


class Layout(NamedTuple):
    """Where and how each object is drawn: centres [n, K, 2] (y, x) and radii [n, K] in pixels,
    colours [n, K, 3] and each image's background [n, 3]."""

    centres: np.ndarray
    radii: np.ndarray
    colours: np.ndarray
    background: np.ndarray


def layout(scenes: Scenes, image_size: int = 64, style: str = "default", seed: int = 0) -> Layout:
    """The `Layout` of scenes drawn in a `STYLES` style; its random draws come from `seed`.

    Objects that would touch after moving stay at their cell's centre instead.
    """
    if image_size % scenes.grid:
        raise ValueError(f"image_size={image_size} is not a multiple of grid={scenes.grid}.")
    check_style(style)
    look = STYLES[style]
    rng = np.random.default_rng([seed, 31337, len(scenes)])
    n, cell = len(scenes), image_size / scenes.grid
    low = np.where(scenes.size == 0, look.small[0], look.large[0])
    high = np.where(scenes.size == 0, look.small[1], look.large[1])
    radius = rng.uniform(low, high) * cell
    if look.jitter is None:
        slack = np.maximum(cell / 2 - radius - 1.0, 0.0)
        offset = scenes.jitter * slack[..., None]
    else:
        offset = rng.uniform(-look.offset, look.offset, (n, 1, 2)) * cell + scenes.jitter * look.jitter * cell
    centre = (np.stack([scenes.row, scenes.col], -1) + 0.5) * cell
    moved = np.clip(centre + offset, radius[..., None] + 0.5, image_size - radius[..., None] - 0.5)
    distance = np.linalg.norm(moved[:, :, None] - moved[:, None, :], axis=-1)
    both = scenes.valid[:, :, None] & scenes.valid[:, None, :] & ~np.eye(MAX_OBJECTS, dtype=bool)
    touching = (both & (distance < radius[:, :, None] + radius[:, None, :] + 1.0)).any(axis=(1, 2))
    moved[touching] = centre[touching]
    palette = np.array([COLOURS[c] for c in COLOUR_NAMES], np.int32)
    colours = np.clip(palette[scenes.colour] + rng.integers(-look.shade, look.shade + 1, (n, MAX_OBJECTS, 3)), 0, 255)
    noise = rng.integers(-look.background_noise, look.background_noise + 1, (n, 3))
    background = np.clip(np.asarray(look.background) + noise, 0, 255)
    return Layout(moved, radius, colours, background)


def render(scenes: Scenes, image_size: int = 64, style: str = "default", seed: int = 0, chunk: int = 512) -> np.ndarray:
    """Renders scenes to uint8 RGB images [num_scenes, image_size, image_size, 3] (see `layout`)."""
    moved, radius, colours, background = layout(scenes, image_size, style, seed)
    n = len(scenes)
    coords = np.arange(image_size, dtype=np.float32) + 0.5
    out = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    for start in range(0, n, chunk):
        part = slice(start, min(start + chunk, n))
        r = radius[part][..., None, None]
        dy = (coords[None, None, :, None] - moved[part, :, 0, None, None]) / r
        dx = (coords[None, None, None, :] - moved[part, :, 1, None, None]) / r
        shape = scenes.shape[part][..., None, None]
        inside = np.where(
            shape == 0,
            dy**2 + dx**2 <= 1.0,
            np.where(
                shape == 1,
                np.maximum(np.abs(dy), np.abs(dx)) <= 0.85,
                (dy >= -1.0) & (dy <= 0.8) & (np.abs(dx) <= (dy + 1.0) * 0.62),
            ),
        )
        inside &= scenes.valid[part][..., None, None]
        # Objects never touch, so at most one object covers a pixel.
        owner = np.argmax(inside, axis=1)  # [n, H, W]
        pixels = np.take_along_axis(colours[part], owner.reshape(len(owner), -1, 1), axis=1)
        pixels = pixels.reshape(len(owner), image_size, image_size, 3)
        covered = inside.any(axis=1)[..., None]
        out[part] = np.where(covered, pixels, background[part, None, None, :]).astype(np.uint8)
    return out


def describe(
    objects: list, rng: np.random.Generator, avoid_held_out: bool = False, relation_share: float = RELATION_SHARE
) -> Caption:
    """Draws one true caption for a scene: attribute, relation or count.

    A scene with two or more objects gets a relation caption with probability
    `relation_share` (attribute and count share the rest 7 : 5). With
    `avoid_held_out` (training), captions that `mentions_held_out` are drawn again.
    """
    if not 0.0 <= relation_share < 1.0:
        # Below 1, so a training scene whose every relation is held out still gets a caption.
        raise ValueError(f"relation_share must be in [0, 1), got {relation_share}.")
    caption = _describe(objects, rng, relation_share)
    while avoid_held_out and mentions_held_out(caption):
        caption = _describe(objects, rng, relation_share)
    return caption


def _describe(objects: list, rng: np.random.Generator, relation_share: float) -> Caption:
    kinds = ["attribute", "count"] + (["relation"] if len(objects) > 1 else [])
    if len(kinds) == 2:
        kind = kinds[rng.integers(2)]
    else:
        rest = (1.0 - relation_share) / 0.6
        kind = rng.choice(kinds, p=[0.35 * rest, 0.25 * rest, relation_share])
    s, c, z, _, _ = objects[rng.integers(len(objects))]
    colour, shape = COLOUR_NAMES[c], SHAPES[s]
    if kind == "attribute":
        return Caption("attribute", colour, shape, size=SIZES[z])
    if kind == "count":
        count = sum(_matches(o, colour, shape) for o in objects)
        return Caption("count", colour, shape, count=count)
    i, j = rng.choice(len(objects), size=2, replace=False)
    a, b = objects[i], objects[j]
    true_relations = [r for r in RELATIONS if _related(a, b, r)]
    return Caption(
        "relation",
        COLOUR_NAMES[a[1]],
        SHAPES[a[0]],
        relation=true_relations[rng.integers(len(true_relations))],
        colour2=COLOUR_NAMES[b[1]],
        shape2=SHAPES[b[0]],
    )


def _one_difference_candidates(caption: Caption) -> dict[str, list[Caption]]:
    """Captions differing from `caption` in exactly one thing, grouped by kind."""
    replace = caption._replace
    out: dict[str, list[Caption]] = {
        "colour": [replace(colour=c) for c in COLOUR_NAMES if c != caption.colour],
        "shape": [replace(shape=s) for s in SHAPES if s != caption.shape],
    }
    if caption.kind == "attribute":
        out["size"] = [replace(size=z) for z in SIZES if z != caption.size]
    elif caption.kind == "count":
        out["count"] = [replace(count=n) for n in range(1, len(NUMBERS)) if n != caption.count]
    else:
        out["colour"] += [replace(colour2=c) for c in COLOUR_NAMES if c != caption.colour2]
        out["shape"] += [replace(shape2=s) for s in SHAPES if s != caption.shape2]
        out["relation"] = [replace(relation=OPPOSITE[caption.relation])]
        out["swap"] = [
            replace(colour=caption.colour2, shape=caption.shape2, colour2=caption.colour, shape2=caption.shape)
        ]
    return out


def hard_negatives(
    caption: Caption, objects: list, rng: np.random.Generator, avoid_held_out: bool = False
) -> dict[str, Caption]:
    """One false, one-difference caption per available kind (kind -> caption)."""
    negatives = {}
    for kind, candidates in _one_difference_candidates(caption).items():
        false = [c for c in candidates if not is_true(c, objects) and not (avoid_held_out and mentions_held_out(c))]
        if false:
            negatives[kind] = false[rng.integers(len(false))]
    return negatives


@dataclasses.dataclass
class PairSet(LabelledPairs):
    """Labelled pairs (images uint8 [N, H, W, 3]) with `kinds` and the scene each image shows.

    `kinds[i]` is "positive" for true pairs, else the negative's kind;
    `scene_ids[i]` indexes the scene; `held_out[i]` says whether the scene's true
    caption `mentions_held_out` (never true of training pairs drawn with `hold_out`).
    """

    scene_ids: np.ndarray | None = None
    held_out: np.ndarray | None = None


def make_pairs(
    num_scenes: int,
    split: str = "train",
    seed: int = 0,
    image_size: int = 64,
    grid: int = GRID,
    negatives: str = "sample",
    hard_fraction: float = 0.75,
    statements: bool = False,
    style: str = "default",
    progress: bool = False,
    hold_out: bool = True,
) -> PairSet:
    """Builds labelled pairs from `num_scenes` scenes.

    negatives="sample": each scene gives one positive and one negative; the
    negative is a one-difference caption with probability `hard_fraction`, else
    a random caption of another scene (checked false). negatives="all": each
    scene gives one positive, one random negative and one negative of every
    available hard kind (for per-kind evaluation). statements=True phrases texts
    as yes/no claims (the classification task). `style` picks the renderer.
    `hold_out=False`: training scenes and captions have every combination too.
    """
    if negatives not in ("sample", "all"):
        raise ValueError(f"negatives must be 'sample' or 'all', got {negatives!r}.")
    scenes = generate_scenes(num_scenes, split, seed, grid, hold_out)
    rng = np.random.default_rng([seed, 7919, PARTS.index(split)])
    avoid_held_out = split == "train" and hold_out
    scene_objects = [scenes.objects(i) for i in range(len(scenes))]
    positives = [describe(objects, rng, avoid_held_out) for objects in scene_objects]
    texts, labels, kinds, scene_ids = [], [], [], []

    def add(caption: Caption, label: int, kind: str, scene: int) -> None:
        texts.append(caption.statement() if statements else caption.text())
        labels.append(label)
        kinds.append(kind)
        scene_ids.append(scene)

    iterator = range(len(scenes))
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc=f"shapes {split}", unit="scene")
    for i in iterator:
        objects = scene_objects[i]
        add(positives[i], 1, "positive", i)
        hard = hard_negatives(positives[i], objects, rng, avoid_held_out)
        random_negative = _random_negative(positives, i, objects, rng)
        if negatives == "all":
            add(random_negative, 0, "random", i)
            for kind, caption in hard.items():
                add(caption, 0, kind, i)
        elif hard and rng.random() < hard_fraction:
            kind = list(hard)[rng.integers(len(hard))]
            add(hard[kind], 0, kind, i)
        else:
            add(random_negative, 0, "random", i)
    images = render(scenes, image_size, style, seed)
    scene_ids = np.asarray(scene_ids)
    held_out = np.asarray([mentions_held_out(positives[i]) for i in scene_ids], bool)
    return PairSet(images[scene_ids], texts, labels, kinds=kinds, scene_ids=scene_ids, held_out=held_out)


def _random_negative(positives: list[Caption], index: int, objects: list, rng) -> Caption:
    while True:
        other = positives[rng.integers(len(positives))]
        if not is_true(other, objects):
            return other


@dataclasses.dataclass
class GroupSet:
    """One image with `group_size` captions each: the true one first, then negatives.

    images uint8 [N, H, W, 3]; texts [N][group_size]; kinds [N][group_size]
    ("positive", then negative kinds). Negatives are one-difference captions in
    random kind order, filled up with random negatives.
    """

    images: np.ndarray
    texts: list[list[str]]
    kinds: list[list[str]]

    def __len__(self) -> int:
        return len(self.texts)

    def first(self, count: int | None) -> GroupSet:
        """The first `count` groups (all of them for None)."""
        return self if count is None else GroupSet(self.images[:count], self.texts[:count], self.kinds[:count])

    def dataset(
        self, preprocessor, image_size: tuple[int, int], batch_size: int = 32, shuffle: bool = False, seed: int = 0
    ):
        """((token_ids [B, K, L], images), labels [B, K]) batches for `ListwiseTrainer`."""
        return pipeline.from_groups(self.images, self.texts, preprocessor, image_size, batch_size, shuffle, seed)


def make_groups(
    num_scenes: int,
    split: str = "train",
    seed: int = 0,
    image_size: int = 64,
    grid: int = GRID,
    group_size: int = 4,
    statements: bool = False,
    style: str = "default",
    progress: bool = False,
    relation_share: float = RELATION_SHARE,
    rivals_first: tuple[str, ...] = (),
    hold_out: bool = True,
) -> GroupSet:
    """Builds caption groups for listwise matching (see `GroupSet`).

    `relation_share`: how often a scene with two or more objects gets a relation
    caption (`describe`); `rivals_first`: negative kinds that join a group before
    the others whenever they exist, e.g. ("relation", "swap"). `hold_out`: as in `make_pairs`.
    """
    if group_size < 2:
        raise ValueError("group_size must be at least 2 (one positive, one negative).")
    scenes = generate_scenes(num_scenes, split, seed, grid, hold_out)
    rng = np.random.default_rng([seed, 104729, PARTS.index(split)])
    avoid_held_out = split == "train" and hold_out
    scene_objects = [scenes.objects(i) for i in range(len(scenes))]
    positives = [describe(objects, rng, avoid_held_out, relation_share) for objects in scene_objects]
    texts, kinds = [], []
    iterator = range(len(scenes))
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc=f"shapes {split}", unit="scene")
    for i in iterator:
        hard = hard_negatives(positives[i], scene_objects[i], rng, avoid_held_out)
        shuffled = [list(hard)[k] for k in rng.permutation(len(hard))]
        chosen = [k for k in rivals_first if k in hard] + [k for k in shuffled if k not in rivals_first]
        chosen = chosen[: group_size - 1]
        group = [(positives[i], "positive")] + [(hard[k], k) for k in chosen]
        while len(group) < group_size:
            group.append((_random_negative(positives, i, scene_objects[i], rng), "random"))
        texts.append([c.statement() if statements else c.text() for c, _ in group])
        kinds.append([k for _, k in group])
    return GroupSet(render(scenes, image_size, style, seed), texts, kinds)
