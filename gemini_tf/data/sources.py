"""Data sources: one object per dataset, asked by every command for its parts.

`open_source(data)` detects the layout once — "shapes" or "nlvr_world" (both
generated), a manifest (.csv / .jsonl), a folder of TFRecord shards, or a
Flickr8k, COCO captions or NLVR folder — and returns a `DataSource`. A source knows its parts (train /
validation / test) and the rule that made them, and hands out the *view* a
training recipe needs:

* `captions(part)`: a `CaptionSet` (images with one or more captions each);
* `pairs(part)`: labelled (image, text) pairs (`LabelledPairs`, or
  `TFRecordPairs` streamed from shards);
* `groups(part)` (generated data only): one image with its true caption (or
  statement) and one-difference rivals.

Each view has `texts` (for the vocabulary) and `dataset(...)` (batched tf.data
through the one preprocessing path). Official splits are used where a dataset
has them (Flickr8k `splits/*.txt`, COCO train2017/val2017, NLVR's numbered
directories and test file); everything else splits by image with
`data.splits`.
"""

from __future__ import annotations

import abc
import logging
import os

import numpy as np

from gemini_tf.data import nlvr_statements, shapes
from gemini_tf.data.captions import CaptionSet
from gemini_tf.data.coco import is_coco, load_coco
from gemini_tf.data.flickr8k import is_flickr8k, load_flickr8k
from gemini_tf.data.labelled import LabelledPairs
from gemini_tf.data.manifest import is_manifest, manifest_has_labels, read_manifest
from gemini_tf.data.nlvr import is_nlvr, load_nlvr, split_by_directory
from gemini_tf.data.records import Record
from gemini_tf.data.report import DataError, DataReport
from gemini_tf.data.splits import PARTS, check_part, parts_of
from gemini_tf.data.tfrecords import TFRecordPairs, is_tfrecord_dir

logger = logging.getLogger("gemini_tf")

KINDS = ("shapes", "nlvr_world", "manifest", "tfrecords", "flickr8k", "coco", "nlvr")


class DataSource(abc.ABC):
    """One dataset with named parts. Subclasses set `kind` and `holds` and implement the views."""

    kind: str = ""
    holds: str = ""  # "captions" or "pairs": what a matching / classification recipe can use
    has_groups = False  # whether `groups` (one-difference rivals for listwise training) exists

    @property
    @abc.abstractmethod
    def parts(self) -> tuple[str, ...]:
        """The parts this copy of the data has, in PARTS order."""

    @abc.abstractmethod
    def describe(self, part: str) -> str:
        """Where the part's rows come from, in words (printed by `evaluate`)."""

    @abc.abstractmethod
    def spec(self) -> dict:
        """What `open_source(spec)` needs to open this source again (saved in bundles)."""

    def captions(self, part: str) -> CaptionSet:
        raise DataError(
            f"{self.name} holds labelled pairs, not captions; matching (task itm) needs "
            "captions: Flickr8k, COCO, a manifest without labels, or shapes."
        )

    def pairs(self, part: str):
        raise DataError(
            f"{self.name} holds captions without labels; task 'classify' needs labelled "
            "pairs: NLVR, a manifest with a label column, TFRecords, or shapes."
        )

    def groups(self, part: str) -> shapes.GroupSet:
        raise DataError(
            f"{self.name}: caption groups with one-difference negatives exist only for "
            "the generated data (shapes, nlvr_world); use matching 'contrastive' or 'binary'."
        )

    @property
    def name(self) -> str:
        return self.kind

    @property
    def held_out_part(self) -> str:
        """The part evaluation scores by default: test where there is one, else validation."""
        return "test" if "test" in self.parts else "validation"

    supports_all = False  # whether part "all" (every row, whatever its part) exists

    def check_part(self, part: str) -> str:
        check_part(part)
        if part == "all" and not self.supports_all:
            raise DataError(f"{self.name} has official splits; choose one of {list(self.parts)}.")
        if part != "all" and part not in self.parts:
            raise DataError(f"{self.name} has no {part!r} part here; it has {list(self.parts)}.")
        return part


class ShapesSource(DataSource):
    """The embedded Shapes generator: every part is drawn fresh from `seed`.

    Args:
        statements: yes/no statements (task classify) instead of captions.
        scenes: scenes per part, e.g. {"train": 16000, "validation": 1000, "test": 1000}.
        seed: data seed.
        image_size: rendered image side in pixels.
        group_size: captions per group (the true one first) for listwise training.
        negatives: pairs per scene: "sample" (one positive, one negative) or "all"
            (one positive, a random negative and one of every one-difference kind).
        style: the renderer (`shapes.STYLES`): "default", or "shifted" to test robustness.
        train_style: the renderer of the training part (default: `style`), e.g. "varied" to
            randomise the look during training.
        hold_out: keep the systematic-generalisation combinations (`shapes.HELD_OUT_OBJECTS`,
            `shapes.HELD_OUT_PAIRS`) out of the training part; False trains on every combination.
            Validation and test are the same scenes either way.
    """

    kind = "shapes"
    holds = "captions"
    has_groups = True

    def __init__(
        self,
        statements: bool = False,
        scenes: dict[str, int] | None = None,
        seed: int = 0,
        image_size: int = 64,
        group_size: int = 4,
        negatives: str = "sample",
        style: str = "default",
        progress: bool = False,
        train_style: str | None = None,
        hold_out: bool = True,
    ):
        for name in (style, train_style or style):
            shapes.check_style(name)  # before any scene is drawn
        self.statements = statements
        self.negatives = negatives
        self.style = style
        self.train_style = train_style or style
        self.hold_out = hold_out
        self.scenes = {"train": 16000, "validation": 1000, "test": 1000, **(scenes or {})}
        self.seed = seed
        self.image_size = image_size
        self.group_size = group_size
        self.progress = progress

    @property
    def parts(self) -> tuple[str, ...]:
        return PARTS

    def describe(self, part: str) -> str:
        return f"shapes {part}: {self.scenes[part]} generated scenes (seed {self.seed})"

    def spec(self) -> dict:
        return {
            "kind": "shapes",
            "statements": self.statements,
            "seed": self.seed,
            "image_size": self.image_size,
            "style": self.style,
            "train_style": self.train_style,
            "hold_out": self.hold_out,
        }

    def part_style(self, part: str) -> str:
        """The renderer of `part`: `train_style` for training, `style` for the rest."""
        return self.train_style if part == "train" else self.style

    def pairs(self, part: str) -> shapes.PairSet:
        return shapes.make_pairs(
            self.scenes[self.check_part(part)],
            part,
            self.seed,
            self.image_size,
            negatives=self.negatives,
            statements=self.statements,
            style=self.part_style(part),
            progress=self.progress,
            hold_out=self.hold_out,
        )

    def captions(self, part: str) -> CaptionSet:
        pairs = shapes.make_pairs(
            self.scenes[self.check_part(part)],
            part,
            self.seed,
            self.image_size,
            statements=self.statements,
            style=self.part_style(part),
            progress=self.progress,
            hold_out=self.hold_out,
        )
        positive = pairs.labels == 1
        return CaptionSet(
            pairs.images[positive],
            [t for t, p in zip(pairs.texts, positive) if p],
            np.arange(int(positive.sum()), dtype=np.int32),
        )

    def groups(
        self,
        part: str,
        stage: int = 0,
        relation_share: float = shapes.RELATION_SHARE,
        rivals_first: tuple[str, ...] = (),
    ) -> shapes.GroupSet:
        """Caption groups of a part. Stage k > 0 draws other scenes (from seed + 10,000 k), for
        the later stages of a curriculum (`data.curriculum`); see `shapes.make_groups`."""
        return shapes.make_groups(
            self.scenes[self.check_part(part)],
            part,
            self.seed + 10_000 * stage,
            self.image_size,
            group_size=self.group_size,
            statements=self.statements,
            style=self.part_style(part),
            progress=self.progress,
            relation_share=relation_share,
            rivals_first=rivals_first,
            hold_out=self.hold_out,
        )


class NLVRWorldSource(DataSource):
    """Generated NLVR-world scenes with true statements and their one-slot false twins
    (`data.nlvr_statements`): cheap, unlimited, exactly labelled pre-training data for NLVR.

    Args:
        scenes: scenes per part, e.g. {"train": 16000, "validation": 1000, "test": 1000}.
        seed: data seed; every part draws its own scenes.
        image_size: (height, width) the 400x100 renderings are resized to.
    """

    kind, holds = "nlvr_world", "pairs"
    has_groups = True

    def __init__(
        self,
        scenes: dict[str, int] | None = None,
        seed: int = 0,
        image_size: tuple[int, int] = (64, 256),
        progress: bool = False,
    ):
        self.scenes = {"train": 16000, "validation": 1000, "test": 1000, **(scenes or {})}
        self.seed = seed
        self.image_size = tuple(int(s) for s in image_size)
        self.progress = progress
        self._cache: dict[str, shapes.GroupSet] = {}

    @property
    def parts(self) -> tuple[str, ...]:
        return PARTS

    def describe(self, part: str) -> str:
        return f"nlvr_world {part}: {self.scenes[part]} generated scenes, a true and a false statement each"

    def spec(self) -> dict:
        return {"kind": self.kind, "seed": self.seed, "image_size": list(self.image_size)}

    def groups(self, part: str) -> shapes.GroupSet:
        """Each scene's image with [true statement, false twin]."""
        if self.check_part(part) not in self._cache:
            if self.progress:
                logger.info("drawing %d NLVR-world scenes for %s", self.scenes[part], part)
            self._cache[part] = nlvr_statements.make_groups(self.scenes[part], part, self.seed, self.image_size)
        return self._cache[part]

    def pairs(self, part: str) -> LabelledPairs:
        """Every statement of the part's groups as a labelled pair (true, false, true, ...)."""
        groups = self.groups(part)
        return LabelledPairs(
            np.repeat(groups.images, 2, axis=0),
            [text for group in groups.texts for text in group],
            np.tile([1, 0], len(groups)),
            groups=[str(i) for i in range(len(groups)) for _ in range(2)],
            kinds=[kind for group in groups.kinds for kind in group],
        )


class _FolderSource(DataSource):
    """A dataset on disk at `path`; bad rows are skipped and counted (or raise with `strict`)."""

    def __init__(self, path: str, strict: bool = False, progress: bool = False):
        self.path = os.path.abspath(path)
        self.strict = strict
        self.progress = progress
        self._cache: dict = {}  # what was read, by part

    @property
    def name(self) -> str:
        return f"{self.kind} ({self.path})"

    def spec(self) -> dict:
        return {"kind": self.kind, "path": self.path}


def _log_report(report: DataReport) -> None:
    if report.num_skipped:
        logger.warning(report.summary())


class Flickr8kSource(_FolderSource):
    """Flickr8k: `splits/train.txt` -> train, `splits/dev.txt` -> validation, `splits/test.txt` -> test.

    A copy without `test.txt` keeps `dev` for the reported figures (test) and
    takes its validation images out of `train.txt` by the split rule (the
    rule's validation buckets, 10 % of the images), so early stopping never
    sees the images a model is scored on.
    """

    kind, holds = "flickr8k", "captions"
    FILES = {"train": "train", "validation": "dev", "test": "test"}

    def _has(self, name: str) -> bool:
        return os.path.isfile(os.path.join(self.path, "splits", f"{name}.txt"))

    @property
    def _carves_validation(self) -> bool:
        return self._has("dev") and not self._has("test")

    @property
    def parts(self) -> tuple[str, ...]:
        if self._carves_validation:
            return PARTS
        return tuple(p for p, f in self.FILES.items() if self._has(f))

    def describe(self, part: str) -> str:
        if not self._carves_validation:
            return f"flickr8k {part}: images listed in splits/{self.FILES[part]}.txt"
        return {
            "train": "flickr8k train: splits/train.txt less the split rule's validation images",
            "validation": "flickr8k validation: the split rule's validation share of splits/train.txt",
            "test": "flickr8k test: images listed in splits/dev.txt (this copy has no splits/test.txt)",
        }[part]

    def captions(self, part: str) -> CaptionSet:
        if part not in self._cache:
            self.check_part(part)
            if not self._carves_validation:
                captions = load_flickr8k(self.path, self.FILES[part], self.strict, self.progress)
            elif part == "test":
                captions = load_flickr8k(self.path, "dev", self.strict, self.progress)
            else:
                captions = self._train_part(part)
            _log_report(captions.report)
            self._cache[part] = captions
        return self._cache[part]

    def _train_part(self, part: str) -> CaptionSet:
        if "train.txt" not in self._cache:
            self._cache["train.txt"] = load_flickr8k(self.path, "train", self.strict, self.progress)
        whole = self._cache["train.txt"]
        in_validation = parts_of([os.path.relpath(p, self.path) for p in whole.images]) == "validation"
        return whole.select_images(np.flatnonzero(in_validation == (part == "validation")))


class CocoSource(_FolderSource):
    """COCO captions: train2017 -> train, val2017 -> validation (no test captions are public)."""

    kind, holds = "coco", "captions"
    FOLDERS = {"train": "train2017", "validation": "val2017"}

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(
            p
            for p, f in self.FOLDERS.items()
            if os.path.isfile(os.path.join(self.path, "annotations", f"captions_{f}.json"))
        )

    def describe(self, part: str) -> str:
        return f"coco {part}: annotations/captions_{self.FOLDERS[part]}.json"

    def captions(self, part: str) -> CaptionSet:
        if part not in self._cache:
            self._cache[part] = load_coco(self.path, self.FOLDERS[self.check_part(part)], self.strict, self.progress)
            _log_report(self._cache[part].report)
        return self._cache[part]


def _pairs_of(records: list[Record]) -> LabelledPairs:
    return LabelledPairs(
        [r.image for r in records],
        [r.text for r in records],
        np.asarray([r.label for r in records], np.int32),
        groups=[r.image_id for r in records],
    )


class NLVRSource(_FolderSource):
    """NLVR v1: dev's directories 0-4 -> train, directory 5 -> validation, test.json -> test.

    A sentence's six renderings always stay in one part (the numbered
    directories are NLVR's intended folds).
    """

    kind, holds = "nlvr", "pairs"

    @property
    def parts(self) -> tuple[str, ...]:
        has = lambda split: os.path.isfile(os.path.join(self.path, split, f"{split}.json"))  # noqa: E731
        return (("train", "validation") if has("dev") else ()) + (("test",) if has("test") else ())

    def describe(self, part: str) -> str:
        return {
            "train": "nlvr train: dev/dev.json, directories 0-4",
            "validation": "nlvr validation: dev/dev.json, directory 5",
            "test": "nlvr test: test/test.json",
        }[part]

    def _records(self, split: str) -> list[Record]:
        if split not in self._cache:
            self._cache[split], report = load_nlvr(self.path, split, self.strict, self.progress)
            _log_report(report)
        return self._cache[split]

    def pairs(self, part: str) -> LabelledPairs:
        if self.check_part(part) == "test":
            return _pairs_of(self._records("test"))
        train, validation = split_by_directory(self._records("dev"))
        return _pairs_of(train if part == "train" else validation)


class ManifestSource(_FolderSource):
    """A CSV / JSON Lines manifest: labelled rows are pairs, unlabelled rows captions.

    Parts come from `data.splits` on each row's image path (relative to the
    manifest's folder), so all rows of one image share a part.
    """

    kind = "manifest"
    supports_all = True

    def __init__(self, path: str, strict: bool = False, progress: bool = False, allow_outside_root: bool = False):
        super().__init__(path, strict, progress)
        self.allow_outside_root = allow_outside_root
        self.holds = "pairs" if manifest_has_labels(self.path) else "captions"

    @property
    def parts(self) -> tuple[str, ...]:
        return PARTS

    @property
    def name(self) -> str:
        return f"manifest {self.path}"

    def describe(self, part: str) -> str:
        return f"{self.path}, part {part!r} (images split 80/10/10 by a hash of their path)"

    def _records(self) -> tuple[list[Record], np.ndarray]:
        """Every usable row (read once) and the part of each."""
        if not self._cache:
            records, report = read_manifest(
                self.path, self.strict, self.allow_outside_root, require_labels=self.holds == "pairs"
            )
            _log_report(report)
            if not records:
                raise DataError(f"{self.path}: no usable rows.\n{report.summary()}")
            self._cache["rows"] = records, parts_of([r.image_id for r in records])
        return self._cache["rows"]

    def _part_records(self, part: str) -> list[Record]:
        records, parts = self._records()
        keep = np.ones(len(records), bool) if self.check_part(part) == "all" else parts == part
        return [r for r, k in zip(records, keep) if k]

    def pairs(self, part: str) -> LabelledPairs:
        if self.holds != "pairs":
            return super().pairs(part)
        return _pairs_of(self._part_records(part))

    def captions(self, part: str) -> CaptionSet:
        if self.holds != "captions":
            return super().captions(part)
        return CaptionSet.from_records(self._part_records(part))


class TFRecordSource(_FolderSource):
    """Sharded TFRecords from `gemini-tf data convert`: labelled pairs, streamed, split by image key."""

    kind, holds = "tfrecords", "pairs"
    supports_all = True

    @property
    def parts(self) -> tuple[str, ...]:
        return PARTS

    def describe(self, part: str) -> str:
        return f"{self.path}, part {part!r} (images split 80/10/10 by a hash of their path)"

    def pairs(self, part: str) -> TFRecordPairs:
        return TFRecordPairs(self.path, self.check_part(part))


FOLDER_SOURCES = (
    (ManifestSource, is_manifest),
    (TFRecordSource, is_tfrecord_dir),
    (Flickr8kSource, is_flickr8k),
    (CocoSource, is_coco),
    (NLVRSource, is_nlvr),
)


def open_source(
    data: str | dict | DataSource = "shapes",
    *,
    strict: bool = False,
    progress: bool = False,
    allow_outside_root: bool = False,
) -> DataSource:
    """The `DataSource` for "shapes", a data path, a saved `spec()`, or a source (returned as is).

    A path that holds no known layout gets an error listing the layouts there are.
    """
    if isinstance(data, DataSource):
        return data
    if isinstance(data, dict):
        spec = {k: v for k, v in data.items() if k != "kind"}
        if data.get("kind") == "shapes":
            return ShapesSource(progress=progress, **spec)
        if data.get("kind") == "nlvr_world":
            return NLVRWorldSource(progress=progress, **spec)
        return open_source(spec["path"], strict=strict, progress=progress, allow_outside_root=allow_outside_root)
    if data == "shapes":
        return ShapesSource(progress=progress)
    if data == "nlvr_world":
        return NLVRWorldSource(progress=progress)
    if not os.path.exists(data):
        raise FileNotFoundError(f"No such data path: {data} (--data takes 'shapes', a manifest, or a dataset folder)")
    for source, test in FOLDER_SOURCES:
        if test(data):
            if source is ManifestSource:
                return ManifestSource(data, strict, progress, allow_outside_root)
            return source(data, strict, progress)
    raise DataError(
        f"{data}: not a known data layout. Expected a manifest (.csv or .jsonl with image,text[,label]), "
        "a folder of .tfrecord shards, or a Flickr8k (captions.csv + images/ + splits/), "
        "COCO (annotations/captions_*.json) or NLVR (dev/dev.json + dev/images/) folder."
    )
