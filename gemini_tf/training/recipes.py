"""Recipes: what a `GeminiModel` learns from, and the trainer that teaches it.

A recipe names the view of the data it reads (`DataSource.groups`, `.captions`
or `.pairs`), turns that view into tf.data, and wraps the model in the trainer
whose loss it needs. `train` picks one by the `matching` name:

* "listwise": each image against its true caption and one-difference rivals
  (`ListwiseTrainer`; Shapes only). What teaches fine-grained matching.
* "contrastive": in-batch alignment (ITC) + matching on mined hard negatives
  (`ContrastiveTrainer`). Gives retrieval embeddings; the default for photos.
* "binary": binary cross-entropy on labelled pairs, the plain Keras workflow.
* "image_listwise": labelled pairs whose text is true of one image and false of
  another, as (text, [true image, false image]) groups (`ImageListwiseTrainer`):
  NLVR's own contrast, which sentence priors cannot answer.

* "describe" (task describe): captions with teacher forcing, next-token
  cross-entropy (`DescribeRecipe`; the model is a `GeminiCaptioner`).

`DistillationRecipe` wraps one of the first three: the same data, taught by a
teacher model (`DistillationTrainer`, see `training.distill`).
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from gemini_tf.data.curriculum import StagedGroups
from gemini_tf.data.sources import DataSource, ShapesSource
from gemini_tf.models.captioner import TokenAccuracy, caption_loss
from gemini_tf.models.contrastive_trainer import ContrastiveTrainer, check_distill_weight
from gemini_tf.models.distillation_trainer import DistillationTrainer
from gemini_tf.models.listwise_trainer import ImageListwiseTrainer, ListwiseTrainer
from gemini_tf.models.momentum import check_momentum
from gemini_tf.preprocessing.text import TextPreprocessor
from gemini_tf.training.loop import FitSettings, adamw
from gemini_tf.training.teacher_cache import TeacherCache, weights_digest

# Listwise training stages: (share of the epochs, relation-rich?). Relations are learnt only once
# words are grounded on objects, and only when most groups are about relations (issue #11).
CURRICULUM = ((1 / 3, False), (2 / 3, True))
RELATION_STAGE = {"relation_share": 0.95, "rivals_first": ("relation", "swap")}


class Recipe:
    """Base: subclasses set `name` and implement `view` and `trainer`."""

    name = ""
    drop_remainder = False  # whether the training dataset drops the last partial batch

    def view(self, source: DataSource, part: str):
        raise NotImplementedError

    def texts(self, view) -> list[str]:
        """The view's texts, for learning the vocabulary."""
        return list(view.texts)

    def dataset(
        self, view, preprocessor: TextPreprocessor, image_size: tuple[int, int], settings: FitSettings, training: bool
    ):
        return view.dataset(preprocessor, image_size, settings.batch_size, shuffle=training, seed=settings.seed)

    def trainer(self, model: keras.Model, settings: FitSettings, total_steps: int) -> keras.Model:
        raise NotImplementedError

    def steps_per_epoch(self, view, settings: FitSettings) -> int | None:
        """`fit`'s steps_per_epoch: None, except for views whose dataset streams the whole run."""
        return None


class ListwiseRecipe(Recipe):
    """Groups of one true caption and one-difference rivals, softmax + balanced BCE + ITC.

    Training groups come in the stages of `CURRICULUM` (`data.curriculum`): the
    default mix of captions for the first third of the epochs, then relation-rich
    groups on fresh scenes; `curriculum=False` trains on the default mix throughout.
    """

    name = "listwise"

    def __init__(self, itc_weight: float = 1.0, curriculum: bool = True):
        self.itc_weight = itc_weight
        self.curriculum = curriculum

    def view(self, source: DataSource, part: str):
        if part != "train" or not self.curriculum:
            return source.groups(part)
        stages = [
            source.groups(part, stage, **RELATION_STAGE) if focus else source.groups(part, stage)
            for stage, (_, focus) in enumerate(CURRICULUM)
        ]
        return StagedGroups(stages, [share for share, _ in CURRICULUM])

    def dataset(self, view, preprocessor, image_size, settings, training):
        if isinstance(view, StagedGroups):
            return view.dataset(
                preprocessor, image_size, settings.epochs, settings.batch_size, shuffle=training, seed=settings.seed
            )
        return super().dataset(view, preprocessor, image_size, settings, training)

    def steps_per_epoch(self, view, settings: FitSettings) -> int | None:
        return view.steps_per_epoch(settings.batch_size) if isinstance(view, StagedGroups) else None

    def texts(self, view) -> list[str]:
        return [text for group in view.texts for text in group]

    def trainer(self, model, settings, total_steps):
        trainer = ListwiseTrainer(model, itc_weight=self.itc_weight)
        trainer.compile(optimizer=adamw(settings.learning_rate, total_steps, settings.weight_decay))
        return trainer


def caption_batches(view, preprocessor, image_size, settings: FitSettings, augment: bool, shuffle: bool):
    """A `CaptionSet`'s ((token_ids, images, image_ids),) batches, shuffled and augmented for training."""
    return view.dataset(
        preprocessor, image_size, settings.batch_size, shuffle=shuffle, augment=augment, seed=settings.seed
    )


@dataclasses.dataclass
class ContrastiveOptions:
    """ALBEF's options of contrastive training (`ContrastiveTrainer`), for noisy photo captions.

    Args:
        itm_warmup: share of the training steps that train ITC alone before ITM counts.
        momentum: EMA momentum of the momentum-distillation encoder; None: no momentum distillation.
        distill_weight: α, the share of the momentum model's soft targets in ITC.
    """

    itm_warmup: float = 0.0
    momentum: float | None = None
    distill_weight: float = 0.4

    def __post_init__(self):
        if not 0.0 <= self.itm_warmup < 1.0:
            raise ValueError(f"itm_warmup is a share of the training steps in [0, 1), got {self.itm_warmup}.")
        if self.momentum is not None:
            check_momentum(self.momentum)
        check_distill_weight(self.distill_weight)


class ContrastiveRecipe(Recipe):
    """Captions: ITC on in-batch negatives + ITM on mined hard negatives; photos are augmented."""

    name = "contrastive"
    drop_remainder = True

    def __init__(self, itm_weight: float = 1.0, augment: bool = True, options: ContrastiveOptions | None = None):
        self.itm_weight = itm_weight
        self.augment = augment
        self.options = options or ContrastiveOptions()

    def view(self, source: DataSource, part: str):
        return source.captions(part)

    def dataset(self, view, preprocessor, image_size, settings, training):
        return caption_batches(view, preprocessor, image_size, settings, training and self.augment, training)

    def trainer(self, model, settings, total_steps):
        trainer = ContrastiveTrainer(
            model,
            itm_weight=self.itm_weight,
            seed=settings.seed,
            itm_warmup_steps=int(self.options.itm_warmup * total_steps),
            momentum=self.options.momentum,
            distill_weight=self.options.distill_weight,
        )
        trainer.compile(optimizer=adamw(settings.learning_rate, total_steps, settings.weight_decay))
        return trainer


class BinaryRecipe(Recipe):
    """Labelled pairs with binary cross-entropy: `model.compile(loss="binary_crossentropy")`."""

    name = "binary"

    def view(self, source: DataSource, part: str):
        return source.pairs(part)

    def trainer(self, model, settings, total_steps):
        model.compile(
            optimizer=adamw(settings.learning_rate, total_steps, settings.weight_decay),
            loss="binary_crossentropy",
            metrics=["accuracy", keras.metrics.AUC(name="auc")],
        )
        return model


class ImageListwiseRecipe(Recipe):
    """Labelled pairs as contrast groups (`LabelledPairs.contrast_groups`): one text, the image it
    is true of and one it is false of, ranked by `ImageListwiseTrainer`."""

    name = "image_listwise"

    def view(self, source: DataSource, part: str):
        return source.pairs(part).contrast_groups()

    def trainer(self, model, settings, total_steps):
        trainer = ImageListwiseTrainer(model)
        trainer.compile(optimizer=adamw(settings.learning_rate, total_steps, settings.weight_decay))
        return trainer


class DescribeRecipe(Recipe):
    """Captions with teacher forcing: the decoder reads [CLS] w1 .. wn and predicts w1 .. wn [SEP];
    photos are augmented as for contrastive training (random resized crop, caption-aware flip)."""

    name = "describe"
    drop_remainder = True

    def __init__(self, augment: bool = True):
        self.augment = augment

    def view(self, source: DataSource, part: str):
        return source.captions(part)

    def dataset(self, view, preprocessor, image_size, settings, training):
        captions = caption_batches(view, preprocessor, image_size, settings, training and self.augment, training)
        return captions.map(teacher_forcing, num_parallel_calls=tf.data.AUTOTUNE)

    def trainer(self, model, settings, total_steps):
        model.compile(
            optimizer=adamw(settings.learning_rate, total_steps, settings.weight_decay),
            loss=caption_loss(),
            metrics=[TokenAccuracy()],
        )
        return model


def teacher_forcing(batch: tuple) -> tuple:
    """((token_ids, images, image_ids),) caption batches -> ([token_ids[:, :-1], images], token_ids[:, 1:])."""
    token_ids, images, _ = batch
    return (token_ids[:, :-1], images), token_ids[:, 1:]


class DistillationRecipe(Recipe):
    """`base`'s data (view, dataset, vocabulary texts), with a frozen `teacher` model teaching:
    L = kd_weight * KD + (1 - kd_weight) * the student's own loss (`student_loss`: its contrastive
    loss, or its whole recipe loss; binary cross-entropy on labelled pairs).

    With a `cache` the teacher's outputs are read from it beside the batches (written by the
    first run): the training stream is then one dataset of every epoch's batches, in order.
    """

    name = "distill"
    LAYOUTS = {"listwise": "groups", "contrastive": "captions", "binary": "pairs"}

    def __init__(
        self,
        base: Recipe,
        teacher: keras.Model,
        kd_weight: float,
        temperature: float,
        student_loss: str,
        cache: TeacherCache | None = None,
    ):
        if base.name not in self.LAYOUTS:
            raise ValueError(f"distillation reads the data of matching {list(self.LAYOUTS)}; got {base.name!r}.")
        self.base, self.teacher = base, teacher
        self.kd_weight, self.temperature, self.student_loss = kd_weight, temperature, student_loss
        self.cache = cache
        self.teacher_digest = weights_digest(teacher) if cache else None  # part of the cache's key
        self.layout = self.LAYOUTS[base.name]
        self.drop_remainder = base.drop_remainder

    def view(self, source, part):
        return self.base.view(source, part)

    def texts(self, view):
        return self.base.texts(view)

    def dataset(self, view, preprocessor, image_size, settings, training):
        if self.cache is None:
            return self.base.dataset(view, preprocessor, image_size, settings, training)

        def make_batches():
            batches = self.base.dataset(view, preprocessor, image_size, settings, training)
            if training and self.base.steps_per_epoch(view, settings) is None:
                batches = batches.repeat(settings.epochs)  # the cache holds the whole run's stream
            return batches

        key = {
            "teacher_weights": self.teacher_digest,
            "layout": self.layout,
            "seed": settings.seed,
            "batch_size": settings.batch_size,
            "epochs": settings.epochs,
            "image_size": list(image_size),
        }
        part = "train" if training else "validation"
        return self.cache.attach(part, make_batches, self.teacher, self.layout, settings.seed, key, len(view))

    def steps_per_epoch(self, view, settings):
        steps = self.base.steps_per_epoch(view, settings)
        if self.cache is None or steps is not None:
            return steps
        return settings.steps(len(view), self.drop_remainder) // settings.epochs  # one stream of every epoch

    def trainer(self, model, settings, total_steps):
        trainer = DistillationTrainer(
            model,
            self.teacher,
            self.layout,
            kd_weight=self.kd_weight,
            temperature=self.temperature,
            student_loss=self.student_loss,
            seed=settings.seed,
        )
        trainer.compile(optimizer=adamw(settings.learning_rate, total_steps, settings.weight_decay))
        return trainer


RECIPES = {
    "listwise": ListwiseRecipe,
    "contrastive": ContrastiveRecipe,
    "binary": BinaryRecipe,
    "image_listwise": ImageListwiseRecipe,
}
MATCHING = tuple(RECIPES)


def default_matching(source: DataSource) -> str:
    """Listwise for generated data (it has one-difference rivals), contrastive for captions, binary for pairs."""
    if source.has_groups:
        return "listwise"
    return "contrastive" if source.holds == "captions" else "binary"


def recipe_for(
    matching: str | None,
    source: DataSource,
    task: str,
    curriculum: bool = True,
    contrastive: ContrastiveOptions | None = None,
) -> Recipe:
    """The recipe named `matching` (default: `default_matching`), checked against the task and data.

    `curriculum`: whether listwise training on Shapes plays the stages of `CURRICULUM`. Listwise
    statements about the NLVR world train without the contrastive term: a statement is true of
    many scenes, so the batch's other images are not its negatives. `contrastive`: options of
    contrastive training (default: `ContrastiveOptions()`)."""
    if task == "describe":
        if matching not in (None, "describe"):
            raise ValueError(f"task 'describe' trains a caption decoder; --matching {matching!r} does not apply.")
        if source.holds != "captions":
            raise ValueError(f"task 'describe' needs captions; {source.name} holds labelled pairs.")
        return DescribeRecipe(augment=not isinstance(source, ShapesSource))
    matching = matching or default_matching(source)
    if matching not in RECIPES:
        raise ValueError(f"Unknown matching {matching!r}; choose one of {list(MATCHING)}.")
    if task == "classify" and matching == "contrastive":
        raise ValueError(
            "task 'classify' trains on labelled pairs; use matching 'binary' (or 'listwise' "
            "on shapes), not 'contrastive'."
        )
    if contrastive is not None and matching != "contrastive":
        raise ValueError(
            f"ITM warm-up and momentum distillation are options of matching 'contrastive', not {matching!r}."
        )
    if matching == "contrastive":
        return ContrastiveRecipe(augment=not isinstance(source, ShapesSource), options=contrastive)
    if matching == "listwise":
        shapes = isinstance(source, ShapesSource)
        return ListwiseRecipe(itc_weight=1.0 if shapes else 0.0, curriculum=curriculum and shapes)
    return RECIPES[matching]()
