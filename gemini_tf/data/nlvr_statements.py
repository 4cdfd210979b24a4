"""True and false statements about NLVR-world scenes, with computed truth.

Pre-training on synthetic NLVR scenes needs sentences whose truth is known. They
come from a small grammar with NLVR's wording:

* counts over the scene: "There are exactly two yellow circles.", "There is no
  blue triangle.", "There are at least three objects touching the edge."
* box quantifiers: "There is a box with only black objects.", "Each box has at
  most two squares.", "Exactly one box has a large yellow circle.", "There is no
  box with exactly three triangles."
* towers (tower scenes say "tower" and "block"): "There is a tower with exactly
  three blocks.", "Each tower has a yellow block at the base.", "Exactly two
  towers have a black block at the top.", "There is a tower with a blue block
  below the top."

Noun phrases: [small|medium|large] [yellow|black|blue] (circle|square|triangle|object|block)
[touching the edge|wall|bottom|base, touching a corner, not touching any edge]
("edge" and "wall" mean any side of the box, "bottom" and "base" its bottom side).
The wording varies as NLVR's writers' does (`Phrasing`): "2" or "two", "item" or
"object", "grey box" or "box", "contains" or "has".

`statement_pair` draws a statement for a scene and a twin that differs from it in
one slot (a number, colour, shape, size, quantifier, place or box quantifier;
agreement follows) and has the other truth value. `make_examples` returns such
pairs as (scene, sentence, label) triples: labels are balanced and every false
sentence is one word-slot away from a true one about the same scene.
`make_groups` draws the scenes too: the listwise pre-training data of
`NLVRWorldSource`.

`evaluate` re-derives a sentence's truth from its text and a `structured_rep`
with a separate parser and separate semantics, so tests can check every label.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import numpy as np

from gemini_tf.data.nlvr_world import (
    BOX_ORDERS,
    COLOUR_NAMES,
    REP_COLOURS,
    SHAPES,
    TOWER_SHARE,
    Item,
    Scene,
    pick,
    render_scenes,
    sample_scenes,
)
from gemini_tf.data.shapes import GroupSet
from gemini_tf.data.splits import PARTS

SIZE_WORDS = {10: "small", 20: "medium", 30: "large"}
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
TOUCHING = {
    "edge": "touching the edge",
    "wall": "touching the wall",
    "bottom": "touching the bottom",
    "base": "touching the base",
    "corner": "touching a corner",
    "no edge": "not touching any edge",
}
COUNT_QUANTIFIERS = ("a", "no", "exactly", "at least", "at most")
BOX_QUANTIFIERS = ("a", "no", "each", "exactly one", "exactly two")
PLACES = ("base", "top", "below the top")


@dataclasses.dataclass(frozen=True)
class Phrasing:
    """How a statement is worded, not what it means. NLVR's writers say "2" as often as "two",
    "item" for "object", "grey box" and "contains"; pre-training on one wording only would
    leave those words to the few real sentences fine-tuning has."""

    digits: bool = False  # "exactly 2" rather than "exactly two"
    item: bool = False  # "item" rather than "object"
    grey: bool = False  # "grey box" rather than "box"
    contains: bool = False  # "contains" rather than "has"

    def number(self, n: int) -> str:
        return str(n) if self.digits else NUMBER_WORDS[n]

    def noun(self, word: str) -> str:
        return "item" if word == "object" and self.item else word


def sample_phrasing(rng: np.random.Generator) -> Phrasing:
    return Phrasing(rng.random() < 0.5, rng.random() < 0.3, rng.random() < 0.2, rng.random() < 0.3)


@dataclasses.dataclass(frozen=True)
class Noun:
    """Items with these properties; None matches anything. `block`: say "block" (towers)."""

    colour: str | None = None
    shape: str | None = None
    size: int | None = None
    touching: str | None = None
    block: bool = False

    def matches(self, item: Item) -> bool:
        return (
            (self.colour is None or item.colour == self.colour)
            and (self.shape is None or item.shape == self.shape)
            and (self.size is None or item.size == self.size)
            and (self.touching is None or self._touches(item))
        )

    def _touches(self, item: Item) -> bool:
        if self.touching in ("bottom", "base"):
            return item.touching_bottom
        if self.touching == "corner":
            return item.touching_corner
        return item.touching_edge == (self.touching != "no edge")

    def words(self, plural: bool = False, phrasing: Phrasing = Phrasing()) -> str:
        noun = phrasing.noun(self.shape or ("block" if self.block else "object"))
        adjectives = [SIZE_WORDS.get(self.size), self.colour, noun + "s" * plural, TOUCHING.get(self.touching)]
        return " ".join(word for word in adjectives if word)


@dataclasses.dataclass(frozen=True)
class Count:
    """'exactly two yellow circles': how many items (of a box or the scene) match `noun`."""

    quantifier: str  # one of COUNT_QUANTIFIERS; "a" is "at least one"
    number: int
    noun: Noun

    def holds(self, items: Sequence[Item]) -> bool:
        n = sum(map(self.noun.matches, items))
        if self.quantifier == "a":
            return n >= 1
        if self.quantifier == "no":
            return n == 0
        if self.quantifier == "exactly":
            return n == self.number
        return n >= self.number if self.quantifier == "at least" else n <= self.number

    @property
    def singular(self) -> bool:
        return self.quantifier in ("a", "no") or self.number == 1

    def words(self, phrasing: Phrasing = Phrasing()) -> str:
        noun = self.noun.words(not self.singular, phrasing)
        if self.quantifier == "a":
            return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"
        if self.quantifier == "no":
            return f"no {noun}"
        return f"{self.quantifier} {phrasing.number(self.number)} {noun}"


@dataclasses.dataclass(frozen=True)
class Only:
    """'only yellow objects': every item of the box matches `noun` (one property set)."""

    noun: Noun

    def holds(self, items: Sequence[Item]) -> bool:
        return all(map(self.noun.matches, items))

    def words(self, phrasing: Phrasing = Phrasing()) -> str:
        return f"only {self.noun.words(True, phrasing)}"


@dataclasses.dataclass(frozen=True)
class Place:
    """'a yellow block at the base' of a tower; places are PLACES."""

    colour: str
    place: str

    def holds(self, items: Sequence[Item]) -> bool:
        bottom_up = sorted(items, key=lambda item: -item.y)
        chosen = {"base": bottom_up[:1], "top": bottom_up[-1:], "below the top": bottom_up[:-1]}[self.place]
        return any(item.colour == self.colour for item in chosen)

    def words(self, phrasing: Phrasing = Phrasing()) -> str:
        where = self.place if self.place == "below the top" else f"at the {self.place}"
        return f"a {self.colour} block {where}"


@dataclasses.dataclass(frozen=True)
class Statement:
    """`claim` about the whole scene (`boxes` None, counts only) or quantified over its boxes."""

    claim: Count | Only | Place
    boxes: str | None = None  # one of BOX_QUANTIFIERS
    tower: bool = False  # say "tower" rather than "box"
    phrasing: Phrasing = Phrasing()

    @property
    def text(self) -> str:
        wording = self.phrasing
        box = "tower" if self.tower else "grey box" if wording.grey else "box"
        claim = self.claim.words(wording)
        has, have = ("contains", "contain") if wording.contains else ("has", "have")
        if self.boxes is None:
            return f"There {'is' if self.claim.singular else 'are'} {claim}."
        if self.boxes in ("a", "no"):
            return f"There is {self.boxes} {box} with {claim}."
        if self.boxes == "each":
            return f"Each {box} {has} {claim}."
        if self.boxes == "exactly one":
            return f"Exactly one {box} {has} {claim}."
        return f"Exactly two {box}{'s' if self.tower else 'es'} {have} {claim}."

    def truth(self, scene: Scene) -> bool:
        if self.boxes is None:
            return self.claim.holds([item for box in scene.boxes for item in box])
        n = sum(self.claim.holds(box) for box in scene.boxes)
        return {"a": n >= 1, "no": n == 0, "each": n == 3, "exactly one": n == 1, "exactly two": n == 2}[self.boxes]


def _noun(scene: Scene, rng: np.random.Generator) -> Noun:
    """Some properties of a random item of the scene (one that touches as said, if any), or random ones."""
    items, touching = [item for box in scene.boxes for item in box], None
    if not scene.is_tower and rng.random() < 0.3:
        touching = pick(tuple(TOUCHING), rng)
        items = [item for item in items if Noun(touching=touching).matches(item)] or items
    item, real = pick(items, rng), rng.random() < 0.7
    colour = (item.colour if real else pick(COLOUR_NAMES, rng)) if rng.random() < 0.6 else None
    if scene.is_tower:
        return Noun(colour=colour, block=True)
    shape = (item.shape if real else pick(SHAPES, rng)) if rng.random() < 0.6 else None
    size = (item.size if real else pick(tuple(SIZE_WORDS), rng)) if rng.random() < 0.25 else None
    return Noun(colour, shape, size, touching)


def _count(items: Sequence[Item], noun: Noun, rng: np.random.Generator) -> Count:
    """A count near the number of `items` that match `noun`."""
    n = sum(map(noun.matches, items))
    quantifier = pick(COUNT_QUANTIFIERS, rng)
    number = min(max(n + pick((-1, 0, 0, 1), rng), 1), len(NUMBER_WORDS) - 1)
    return Count(quantifier, number, noun)


def sample_statement(scene: Scene, rng: np.random.Generator) -> Statement:
    """A random statement about `scene`, true or false, in a random `Phrasing`."""
    return dataclasses.replace(_sample_claim(scene, rng), phrasing=sample_phrasing(rng))


def _sample_claim(scene: Scene, rng: np.random.Generator) -> Statement:
    tower, kind = scene.is_tower, rng.random()
    noun = _noun(scene, rng)
    if kind < 0.35:
        return Statement(_count([item for box in scene.boxes for item in box], noun, rng), tower=tower)
    boxes = pick(BOX_QUANTIFIERS, rng)
    if kind < 0.7:
        return Statement(_count(pick(scene.boxes, rng), noun, rng), boxes, tower)
    if tower and kind < 0.85:
        return Statement(Place(pick(COLOUR_NAMES, rng), pick(PLACES, rng)), boxes, tower)
    properties = [f for f in ("colour", "shape", "size") if getattr(noun, f) is not None] or ["colour"]
    field = pick(properties, rng)
    value = getattr(noun, field) or pick(COLOUR_NAMES, rng)
    return Statement(Only(Noun(block=tower, **{field: value})), boxes, tower)


def _noun_variants(noun: Noun) -> list[Noun]:
    options = {"colour": COLOUR_NAMES, "shape": SHAPES, "size": tuple(SIZE_WORDS), "touching": tuple(TOUCHING)}
    return [
        dataclasses.replace(noun, **{field: value})
        for field, values in options.items()
        if getattr(noun, field) is not None
        for value in values
        if value != getattr(noun, field)
    ]


def variants(statement: Statement) -> list[Statement]:
    """Statements that differ from `statement` in one slot."""
    claim, out = statement.claim, []
    if isinstance(claim, Count):
        numeric = ("exactly", "at least", "at most")
        quantifiers = numeric if claim.quantifier in numeric else ("a", "no")
        out += [dataclasses.replace(claim, quantifier=q) for q in quantifiers if q != claim.quantifier]
        if claim.quantifier in numeric:
            numbers = (claim.number + d for d in (-2, -1, 1, 2))
            out += [dataclasses.replace(claim, number=n) for n in numbers if 1 <= n < len(NUMBER_WORDS)]
        out += [dataclasses.replace(claim, noun=noun) for noun in _noun_variants(claim.noun)]
    elif isinstance(claim, Only):
        out += [Only(noun) for noun in _noun_variants(claim.noun)]
    else:
        out += [Place(c, claim.place) for c in COLOUR_NAMES if c != claim.colour]
        out += [Place(claim.colour, p) for p in PLACES if p != claim.place]
    statements = [dataclasses.replace(statement, claim=c) for c in out]
    if statement.boxes is not None:
        statements += [dataclasses.replace(statement, boxes=b) for b in BOX_QUANTIFIERS if b != statement.boxes]
    return statements


def statement_pair(scene: Scene, rng: np.random.Generator) -> tuple[Statement, Statement]:
    """(true, false) statements about `scene` that differ in one slot."""
    while True:
        statement = sample_statement(scene, rng)
        truth = statement.truth(scene)
        twins = variants(statement)
        for i in rng.permutation(len(twins)):
            if twins[i].truth(scene) != truth:
                return (statement, twins[i]) if truth else (twins[i], statement)


def make_examples(
    num_scenes: int, rng: np.random.Generator, pairs_per_scene: int = 1, tower_share: float = TOWER_SHARE
) -> list[tuple[Scene, str, bool]]:
    """(scene, sentence, label) triples: `pairs_per_scene` true/false pairs for each random scene."""
    examples = []
    for scene in sample_scenes(num_scenes, rng, tower_share):
        for _ in range(pairs_per_scene):
            true, false = statement_pair(scene, rng)
            examples += [(scene, true.text, True), (scene, false.text, False)]
    return examples


def make_groups(
    num_scenes: int, part: str = "train", seed: int = 0, image_size: tuple[int, int] = (64, 256)
) -> GroupSet:
    """Listwise training groups: each random scene, drawn in a random one of its six box orders,
    with its true statement first and the false twin second (kinds "positive", "false_twin")."""
    rng = np.random.default_rng([seed, 7177, PARTS.index(part)])
    scenes = sample_scenes(num_scenes, rng)
    texts = [[statement.text for statement in statement_pair(scene, rng)] for scene in scenes]
    shown = [scene.permuted(pick(range(len(BOX_ORDERS)), rng)) for scene in scenes]
    return GroupSet(render_scenes(shown, image_size), texts, [["positive", "false_twin"]] * num_scenes)


# The independent checker: its own parser over the text, its own semantics over the raw
# structured_rep. It shares nothing with the generator above but the vocabulary.
_NOUN = (
    r"(?:(small|medium|large) )?(?:(yellow|black|blue) )?(circle|square|triangle|object|item|block)s?"
    r"(?: (touching the (?:edge|wall|bottom|base)|touching a corner|not touching any edge))?"
)
_NUMBER = "|".join(NUMBER_WORDS) + r"|\d+"
_COUNT = re.compile(rf"(an?|no|exactly (?:{_NUMBER})|at least (?:{_NUMBER})|at most (?:{_NUMBER})) {_NOUN}")
_ONLY = re.compile(rf"only {_NOUN}")
_PLACE = re.compile(r"a (yellow|black|blue) block (at the base|at the top|below the top)")
_SENTENCE = re.compile(
    r"There is (?P<exists>a|no) (?:grey )?(?:box|tower) with (?P<a>.+)\."
    r"|Each (?:grey )?(?:box|tower) (?:has|contains) (?P<each>.+)\."
    r"|Exactly (?P<exactly>one|two) (?:grey )?(?:box|tower)(?:es|s)? (?:has|have|contains|contain) (?P<b>.+)\."
    r"|There (?:is|are) (?P<scene>.+)\."
)


def _touches(obj: dict, how: str) -> bool:
    left, top = obj["x_loc"], obj["y_loc"]
    right, bottom = 100 - left - obj["size"], 100 - top - obj["size"]
    if how in ("touching the bottom", "touching the base"):
        return bottom == 0
    if how == "touching a corner":
        return 0 in (left, right) and 0 in (top, bottom)
    return (0 in (left, top, right, bottom)) == (how != "not touching any edge")


def _noun_test(size: str | None, colour: str | None, shape: str, touching: str | None):
    sizes = {"small": 10, "medium": 20, "large": 30}
    return lambda obj: (
        (size is None or obj["size"] == sizes[size])
        and (colour is None or REP_COLOURS[obj["color"]] == colour)
        and (shape in ("object", "item", "block") or obj["type"] == shape)
        and (touching is None or _touches(obj, touching))
    )


def _claim_test(text: str):
    """A predicate over a list of raw objects for the claim `text`."""
    if match := _PLACE.fullmatch(text):
        colour, place = match.groups()

        def placed(objs: list) -> bool:
            heights = sorted(objs, key=lambda obj: obj["y_loc"])  # top first
            chosen = heights[:1] if place == "at the top" else heights[-1:] if place == "at the base" else heights[1:]
            return any(REP_COLOURS[obj["color"]] == colour for obj in chosen)

        return placed
    if match := _ONLY.fullmatch(text):
        test = _noun_test(*match.groups())
        return lambda objs: all(test(obj) for obj in objs)
    if match := _COUNT.fullmatch(text):
        quantity, *noun = match.groups()
        test = _noun_test(*noun)
        words = quantity.split()
        number = words[-1]
        k = NUMBER_WORDS.index(number) if number in NUMBER_WORDS else int(number) if number.isdigit() else None
        compare = {"a": lambda n: n > 0, "an": lambda n: n > 0, "no": lambda n: n == 0}.get(quantity)
        compare = compare or {"exactly": k.__eq__, "least": k.__le__, "most": k.__ge__}[words[-2]]
        return lambda objs: compare(sum(1 for obj in objs if test(obj)))
    raise ValueError(f"not a claim of the NLVR-world grammar: {text!r}")


def evaluate(sentence: str, structured_rep: Sequence) -> bool:
    """Whether a sentence of this grammar is true of a `structured_rep`, from the text alone."""
    match = _SENTENCE.fullmatch(sentence)
    if match is None:
        raise ValueError(f"not a sentence of the NLVR-world grammar: {sentence!r}")
    if match["scene"] is not None:
        return _claim_test(match["scene"])([obj for box in structured_rep for obj in box])
    test = _claim_test(match["a"] or match["each"] or match["b"])
    n = sum(1 for box in structured_rep if test(box))
    if match["exists"]:
        return n > 0 if match["exists"] == "a" else n == 0
    if match["each"]:
        return n == len(structured_rep)
    return n == NUMBER_WORDS.index(match["exactly"])
