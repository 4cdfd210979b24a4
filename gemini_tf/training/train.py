"""`train`: data source -> recipe -> fit loop -> saved bundle, for every kind of training.

source = open_source(data)                 # detect the layout once
recipe = recipe_for(matching, source)      # which view, which trainer
train/validation views -> vocabulary -> tf.data
model = gemini_model(config)               # or the --init bundle's config, weights, vocabulary
fit(recipe.trainer(model), ...)
bundle.metrics = evaluate(bundle, source, "validation"); bundle.save(...)

Under "mixed_bfloat16" or "multi_worker" the bundle holds a plain float32 copy
of the trained model (float32 compute, no distributed variables), and only
the chief of a multi-worker cluster evaluates and saves it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import keras

from gemini_tf.bundle import LABEL_NAMES, GeminiBundle
from gemini_tf.config import GeminiConfig, config_for
from gemini_tf.data.report import DataError
from gemini_tf.data.sources import DataSource, NLVRWorldSource, ShapesSource, open_source
from gemini_tf.evaluation import evaluate
from gemini_tf.models.captioner import CAPTIONER_PARTS, caption_model
from gemini_tf.models.gemini import MODEL_PARTS, gemini_model
from gemini_tf.preprocessing.text import TextPreprocessor, learn_vocabulary
from gemini_tf.training.loop import FitSettings, fit, get_strategy, history_dict, precision_policy
from gemini_tf.training.multi_worker import is_chief
from gemini_tf.training.pretrained import frozen, open_init
from gemini_tf.training.recipes import ContrastiveOptions, recipe_for

if TYPE_CHECKING:
    from gemini_tf.training.distill import Teacher


def train(
    output_dir: str,
    data: str | DataSource = "shapes",
    *,
    task: str = "itm",
    matching: str | None = None,
    preset: str | None = None,
    fusion: str | None = None,
    config_overrides: dict | None = None,
    epochs: int = 5,
    batch_size: int = 32,
    learning_rate: float = 5e-4,
    vocabulary_size: int | None = None,
    vocabulary_texts: Sequence[str] = (),
    train_scenes: int = 16000,
    validation_scenes: int = 1000,
    group_size: int = 4,
    curriculum: bool = True,
    train_style: str = "default",
    hold_out: bool = True,
    init: str | None = None,
    freeze: str = "none",
    max_examples: dict[str, int] | None = None,
    strict: bool = False,
    allow_outside_root: bool = False,
    seed: int = 0,
    strategy: str = "default",
    precision: str = "float32",
    verbose: int | str = "auto",
    build_model: Callable[[GeminiConfig], keras.Model] | None = None,
    pretraining: dict | None = None,
    teacher: Teacher | None = None,
    contrastive: ContrastiveOptions | None = None,
) -> GeminiBundle:
    """Trains a model and saves a bundle in `output_dir`; returns the `GeminiBundle`.

    Args:
        output_dir: the bundle folder (and `run/`: checkpoints, logs, backup).
        data: "shapes" or "nlvr_world" (generated), a path (manifest, TFRecord
            folder, Flickr8k, COCO or NLVR folder) or a `DataSource`.
        task: "itm" (does the caption describe the image?), "classify" (is
            the statement true?) or "describe" (write the caption: a
            `GeminiCaptioner`, trained on the captions of `data`).
        matching: "listwise", "contrastive" or "binary" (see
            `training.recipes`); default: listwise on generated data, contrastive
            on captions, binary on labelled pairs.
        preset, fusion, config_overrides: the model (`GeminiConfig.from_preset`;
            default preset "tiny"; fusion: the preset's, "cross_attention" for tiny and small).
        epochs, batch_size, learning_rate, seed, strategy, precision, verbose:
            `FitSettings`. Under "multi_worker" every worker calls `train` with
            the same arguments (and the same PYTHONHASHSEED: vocabulary
            learning breaks ties in set order); the chief returns the
            evaluated, saved bundle, the others an unsaved one without metrics.
        vocabulary_size: WordPiece vocabulary learnt from the training texts
            (default 1000).
        vocabulary_texts: more texts the vocabulary is learnt from (pre-training
            adds the fine-tuning task's sentences).
        train_scenes, validation_scenes: generated data only; group_size: Shapes only.
        curriculum: listwise training on Shapes plays the stages of
            `recipes.CURRICULUM` (the default mix first, then relation-rich groups); False: the
            default caption mix throughout.
        train_style: the Shapes renderer of the training scenes (`shapes.STYLES`),
            e.g. "varied" to randomise their look; evaluation stays on "default".
        hold_out: Shapes: keep the systematic-generalisation combinations out of
            training (`ShapesSource`); False trains on every combination.
        init: a bundle folder to fine-tune from (`training.pretrained`): its
            architecture, vocabulary and trained weights; preset / fusion /
            overrides may only repeat them (dropout may change). Or a keras-hub
            preset folder: its vocabulary and the text encoder weights that fit.
        freeze: "text" or "image" keeps that pre-trained encoder fixed; "none".
        max_examples: at most this many examples per part, e.g. {"train": 3000,
            "validation": 100} — images of caption data, rows of labelled pairs.
        strict, allow_outside_root: bad-row handling of files on disk.
        build_model: builds the Keras model from the config (baselines swap it);
            default `model_builder(task, preprocessor)`.
        pretraining: recorded in the bundle (`pretrain` says which objective made it).
        teacher: distil this teacher into the model (`training.distill`): the
            teacher's vocabulary and inputs, `preset`'s sizes, L = λ·KD + (1−λ)·CL.
        contrastive: ITM warm-up and momentum distillation of matching "contrastive"
            (`recipes.ContrastiveOptions`).
    """
    settings = FitSettings(
        epochs, batch_size, learning_rate, strategy=strategy, precision=precision, seed=seed, verbose=verbose
    )
    # First: MultiWorkerMirroredStrategy must exist before TensorFlow runs any op.
    distribution = get_strategy(settings.strategy)
    if init and teacher:
        raise ValueError("--init and --teacher exclude each other: a student starts from scratch.")
    start = open_init(init) if init else None
    requested = {**({"fusion": fusion} if fusion else {}), **(config_overrides or {})}
    if teacher:
        config = teacher.student_config(preset, requested)
    elif start:
        config = start.config(task, preset, requested)
    else:
        config = config_for(preset, task, requested)
    keras.utils.set_random_seed(seed)
    shapes_options = {"group_size": group_size, "train_style": train_style, "hold_out": hold_out}
    source = _source(data, config, task, train_scenes, validation_scenes, shapes_options, seed, verbose)
    if not isinstance(source, DataSource):
        source = open_source(data, strict=strict, allow_outside_root=allow_outside_root, progress=bool(verbose))
    recipe = recipe_for(matching, source, task, curriculum, contrastive)
    if teacher:
        recipe = teacher.recipe(recipe, verbose=bool(verbose))
        pretraining = {**(pretraining or {}), "distillation": teacher.record()}

    train_view, validation_view = (
        recipe.view(source, part).first((max_examples or {}).get(part)) for part in ("train", "validation")
    )
    _check_enough(source, train_view, validation_view, settings.batch_size)
    if start or teacher:  # the vocabulary the pre-trained weights (or the teacher) tokenize with
        vocabulary = (start or teacher).vocabulary(vocabulary_size)
    else:
        vocabulary = learn_vocabulary([*recipe.texts(train_view), *vocabulary_texts], vocabulary_size or 1000)
    preprocessor = TextPreprocessor(vocabulary, config.sequence_length)
    config.vocabulary_size = preprocessor.vocabulary_size
    build_model = build_model or model_builder(task, preprocessor)
    train_data = recipe.dataset(train_view, preprocessor, config.image_size, settings, training=True)
    validation_data = recipe.dataset(validation_view, preprocessor, config.image_size, settings, training=False)
    with distribution.scope(), precision_policy(settings.precision):
        model = build_model(config)
        if start:
            parts = start.load_weights(model)
            pretraining = {**(pretraining or {}), "init": os.path.abspath(init), "init_parts": parts, "freeze": freeze}
        with frozen(model, freeze):
            trainer = recipe.trainer(model, settings, settings.steps(len(train_view), recipe.drop_remainder))
            history = fit(
                trainer,
                train_data,
                validation_data,
                settings,
                os.path.join(output_dir, "run"),
                steps_per_epoch=recipe.steps_per_epoch(train_view, settings),
            )
    if settings.precision != "float32" or settings.strategy == "multi_worker":
        model = float32_copy(model, build_model, config)
    bundle = GeminiBundle(
        model,
        preprocessor,
        config,
        LABEL_NAMES.get(task, ()),
        trained_parts=CAPTIONER_PARTS if task == "describe" else MODEL_PARTS,
        history=history_dict(history),
        data=source.spec(),
        pretraining=pretraining or {},
    )
    if is_chief(distribution):
        bundle.metrics = evaluate(bundle, source, "validation")
        bundle.save(output_dir)
    return bundle


def model_builder(task: str, preprocessor: TextPreprocessor) -> Callable[[GeminiConfig], keras.Model]:
    """config -> a fresh model for `task`: a `GeminiModel`, or for "describe" a `GeminiCaptioner`
    that starts, ends and never writes the tokens of `preprocessor`'s vocabulary."""
    if task == "describe":
        return functools.partial(caption_model, **preprocessor.caption_ids())
    return gemini_model


def _source(data, config: GeminiConfig, task, train_scenes, validation_scenes, shapes_options: dict, seed, verbose):
    """The generated source "shapes" / "nlvr_world" names, sized for the model; `data` itself otherwise.
    `shapes_options`: more `ShapesSource` arguments."""
    scenes = {"train": train_scenes, "validation": validation_scenes}
    if isinstance(data, str) and data == "shapes":
        return ShapesSource(
            statements=task == "classify",
            seed=seed,
            image_size=config.image_size[0],
            scenes=scenes,
            progress=bool(verbose),
            **shapes_options,
        )
    if isinstance(data, str) and data == "nlvr_world":
        return NLVRWorldSource(scenes, seed, config.image_size, progress=bool(verbose))
    return data


def float32_copy(
    model: keras.Model, build_model: Callable[[GeminiConfig], keras.Model], config: GeminiConfig
) -> keras.Model:
    """`model` rebuilt in float32, with its weights, by a caller outside any distribution
    strategy's scope: what bundles save and exports serve, however the model was trained."""
    with precision_policy("float32"):
        copy = build_model(config)
    copy.set_weights(model.get_weights())
    return copy


def _check_enough(source: DataSource, train_view, validation_view, batch_size: int) -> None:
    """A clear error, naming the source and the counts, when a part cannot fill one batch."""
    for part, view in (("train", train_view), ("validation", validation_view)):
        if len(view) < (batch_size if part == "train" else 1):
            raise DataError(
                f"{source.name}: the {part} part has {len(view)} usable examples, fewer than "
                f"{'one batch (' + str(batch_size) + ')' if part == 'train' else 'one'}; "
                "add data or lower --batch-size."
            )
