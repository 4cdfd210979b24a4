"""`gemini-tf` (also `python -m gemini_tf`): train, pretrain, distill, evaluate, predict, describe, export, index,
retrieve, convert.

Every command calls the package; no logic lives here beyond argument parsing,
quiet start-up, and turning known errors into one readable line (exit code 2).
TensorFlow's start-up logging is hidden unless TF_CPP_MIN_LOG_LEVEL is set
(TF_CPP_MIN_LOG_LEVEL=0 shows everything).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys

EXAMPLES = """examples:
  gemini-tf train --output-dir saved_models/quickstart
  gemini-tf train --task classify --fusion concat --epochs 3 --output-dir saved_models/statements
  gemini-tf evaluate --model saved_models/quickstart
  gemini-tf predict --model saved_models/quickstart --image scene.png --text "a small red circle"
  gemini-tf export --model saved_models/quickstart --name shapes
  gemini-tf export --model saved_models/quickstart --name shapes --format tflite --quantize none dynamic
  gemini-tf train --data ../shared/data/flickr8k --preset small --output-dir saved_models/flickr
  gemini-tf evaluate --model saved_models/flickr --data ../shared/data/flickr8k --split validation
  gemini-tf index --model saved_models/flickr --data ../shared/data/flickr8k --split validation --out dev.npz
  gemini-tf retrieve --model saved_models/flickr --index dev.npz --text "a dog runs on the beach" --rerank 16
  gemini-tf data convert manifest.csv --out shards/ --shards 8
  gemini-tf data convert manifest.csv --out shards/ --engine beam --beam-option direct_num_workers=2
  gemini-tf index --model saved_models/flickr --images photos/ --engine beam --out gallery.npz
  gemini-tf train --task classify --data shards/ --output-dir saved_models/mine
  gemini-tf train --task classify --data ../shared/data/nlvr --image-size 64 256 --output-dir saved_models/nlvr
  gemini-tf pretrain --objective statements --text ../shared/data/nlvr --output-dir saved_models/world
  gemini-tf train --task classify --data ../shared/data/nlvr --init saved_models/world --output-dir saved_models/nlvr
  gemini-tf distill --teacher saved_models/flickr --preset tiny --lambda 0.5 --output-dir saved_models/student
  gemini-tf train --task describe --data ../shared/data/flickr8k --init saved_models/flickr \
      --output-dir saved_models/cap
  gemini-tf describe --model saved_models/cap --image photo.jpg --sampler beam --beams 4
"""


def build_parser() -> argparse.ArgumentParser:
    from gemini_tf.beam.options import ENGINES, RUNNERS
    from gemini_tf.config import CONTRASTIVE_LOSSES, FUSIONS, PRESETS, TASKS
    from gemini_tf.data.shapes import STYLES
    from gemini_tf.data.splits import PARTS
    from gemini_tf.export.tflite import QUANTIZATIONS
    from gemini_tf.models.captioner import SAMPLERS
    from gemini_tf.models.distillation_trainer import STUDENT_LOSSES
    from gemini_tf.retrieval import ANN_THRESHOLD, KINDS, SEARCH_MODES
    from gemini_tf.training.loop import PRECISIONS, STRATEGIES
    from gemini_tf.training.pretrain import OBJECTIVES, WORLDS
    from gemini_tf.training.pretrained import FREEZE
    from gemini_tf.training.recipes import MATCHING

    parser = argparse.ArgumentParser(
        prog="gemini-tf",
        description="Train, evaluate and query small image-text models (Keras 3 / TensorFlow).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="train a model (on the embedded Shapes data by default) and save it",
        description="Train a Gemini model with model.fit and save a bundle (model.keras, "
        "vocab.txt, gemini_tf.json) to --output-dir.",
    )
    train.add_argument(
        "--task",
        choices=TASKS,
        default="itm",
        help="itm: does the caption describe the image?; classify: is the statement true?; "
        "describe: write a caption for the image (default: itm)",
    )
    train.add_argument(
        "--data",
        default="shapes",
        help="shapes (generated on the fly, the default), a manifest (.csv/.jsonl), a folder of "
        "TFRecord shards, or a Flickr8k, COCO captions or NLVR folder",
    )
    _add_model_arguments(train, PRESETS, FUSIONS)
    train.add_argument(
        "--matching",
        choices=MATCHING,
        default=None,
        help="listwise: rank the true caption above one-difference rivals (Shapes default); "
        "contrastive: in-batch alignment + matching on mined negatives, gives retrieval "
        "embeddings (default for captions); binary: binary cross-entropy on labelled pairs "
        "(default for NLVR, labelled manifests, TFRecords); image_listwise: a text with an image it is true "
        "of and one it is false of, ranked (NLVR's own contrast)",
    )
    train.add_argument(
        "--contrastive-loss",
        choices=CONTRASTIVE_LOSSES,
        default=None,
        help="loss of the contrastive head (default: infonce)",
    )
    _add_fit_arguments(train, learning_rate=5e-4)
    train.add_argument(
        "--itm-warmup",
        type=float,
        default=None,
        metavar="SHARE",
        help="matching contrastive: the share of the training steps that train ITC alone before the ITM loss "
        "counts (ALBEF; 0: ITM from the start)",
    )
    train.add_argument(
        "--momentum-distill",
        type=float,
        default=None,
        metavar="MOMENTUM",
        help="matching contrastive: momentum distillation, soft ITC targets from an EMA copy of the encoders "
        "with this momentum, e.g. 0.995 (0: off)",
    )
    train.add_argument(
        "--distill-weight",
        type=float,
        default=None,
        help="with --momentum-distill: the share α of the soft targets in ITC (default: 0.4)",
    )
    train.add_argument(
        "--decoder-layers", type=int, default=None, help="caption decoder blocks (--task describe; default: 2)"
    )
    train.add_argument(
        "--train-scenes", type=int, default=16000, help="generated training scenes (shapes, nlvr_world; default: 16000)"
    )
    train.add_argument(
        "--validation-scenes", type=int, default=1000, help="generated validation scenes (default: 1000)"
    )
    train.add_argument(
        "--train-style",
        choices=sorted(STYLES),
        default="default",
        help="Shapes renderer of the training scenes: varied randomises positions, sizes, shades and "
        "background per image (default: default)",
    )
    train.add_argument(
        "--all-combinations",
        action="store_true",
        help="Shapes: train on every colour-shape combination, the systematic-generalisation ones "
        "(red triangle, blue circle, yellow square) included; validation and test stay the same",
    )
    train.add_argument(
        "--no-curriculum",
        action="store_true",
        help="Shapes listwise training: the default caption mix throughout, instead of the default mix for "
        "the first third of the epochs, then relation-rich groups",
    )
    _add_size_arguments(train)
    train.add_argument(
        "--phrase-evidence",
        action="store_true",
        help="--fusion grounded: match neighbouring words (colour + shape) to the same image cell, one by one "
        "(better on colour-shape combinations never seen in training, weaker on relations)",
    )
    train.add_argument(
        "--init",
        default=None,
        metavar="PRETRAINED_MODEL",
        help="fine-tune from a bundle written by `gemini-tf pretrain` (or train): its architecture, vocabulary "
        "and weights; or from a keras-hub preset folder on disk: its vocabulary and the text encoder weights "
        "that fit",
    )
    train.add_argument(
        "--freeze",
        choices=tuple(FREEZE),
        default="none",
        help="with --init: keep the pre-trained text or image encoder fixed (default: none)",
    )
    train.add_argument("--strict", action="store_true", help="stop at the first bad data row instead of skipping it")
    train.add_argument(
        "--allow-outside-root",
        action="store_true",
        help="let manifest paths climb out of the manifest's folder with ..",
    )
    train.add_argument(
        "--output-dir", default="saved_models/gemini", help="where the bundle is saved (default: saved_models/gemini)"
    )
    train.add_argument("--seed", type=int, default=0, help="random seed for data and weights (default: 0)")
    train.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="default",
        help="tf.distribute strategy: default (one device), mirrored (all local devices) or multi_worker "
        "(the cluster in TF_CONFIG: start the same command on every worker)",
    )
    train.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="float32",
        help="mixed_bfloat16: bfloat16 compute with float32 weights, heads and losses; the saved model is "
        "float32 either way (default: float32)",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bars")

    pretrain = commands.add_parser(
        "pretrain",
        help="pre-train a model on generated statements or on text (MLM), to fine-tune with train --init",
        description="Pre-train a Gemini model and save a bundle that `gemini-tf train --init` fine-tunes from. "
        "statements: listwise true/false statements about generated scenes (all parts of the model); "
        "mlm: masked-language modelling of the text encoder on --text.",
    )
    pretrain.add_argument("--objective", choices=OBJECTIVES, default="statements", help="(default: statements)")
    pretrain.add_argument(
        "--world",
        choices=WORLDS,
        default="nlvr_world",
        help="the generated scenes statements are about; sets the default input sizes (default: nlvr_world, "
        "256x64 images and 32 tokens)",
    )
    pretrain.add_argument(
        "--text",
        nargs="+",
        default=[],
        metavar="SOURCE",
        help="texts for the vocabulary (and the MLM corpus): .txt files (one text per line), dataset folders "
        "or manifests (their train part), nlvr_world or shapes (generated statements)",
    )
    pretrain.add_argument(
        "--init", default=None, metavar="PRETRAINED_MODEL", help="continue from a bundle (e.g. MLM, then statements)"
    )
    _add_model_arguments(pretrain, PRESETS, FUSIONS)
    _add_fit_arguments(pretrain, learning_rate=1e-3)
    pretrain.add_argument(
        "--scenes", type=int, default=16000, help="generated training scenes or statements (default: 16000)"
    )
    _add_size_arguments(pretrain)
    pretrain.add_argument(
        "--output-dir",
        default="saved_models/pretrained",
        help="where the bundle is saved (default: saved_models/pretrained)",
    )
    pretrain.add_argument("--seed", type=int, default=0, help="random seed for data and weights (default: 0)")
    pretrain.add_argument("--quiet", action="store_true", help="no progress bars")

    distill = commands.add_parser(
        "distill",
        help="train a small student from a trained teacher model: L = lambda*KD + (1-lambda)*InfoNCE",
        description="Distil a trained teacher bundle into a smaller student (--preset) on the teacher's data: "
        "the student learns the teacher's softened similarity and match distributions (KD) and its own "
        "contrastive loss (binary cross-entropy for --task classify teachers). The student keeps the teacher's "
        "vocabulary and input sizes and is saved as an ordinary bundle.",
    )
    distill.add_argument("--teacher", required=True, metavar="TEACHER_MODEL", help="the teacher's bundle folder")
    distill.add_argument(
        "--data", default=None, help="what to train on (default: the teacher's training data, as recorded)"
    )
    distill.add_argument("--preset", choices=sorted(PRESETS), default="tiny", help="the student's size (default: tiny)")
    distill.add_argument(
        "--fusion", choices=FUSIONS, default=None, help="the student's fusion (default: the teacher's)"
    )
    distill.add_argument(
        "--lambda",
        dest="kd_weight",
        type=float,
        default=0.5,
        help="weight of the distillation term, in [0, 1]; 0: the student's own loss alone (default: 0.5)",
    )
    distill.add_argument(
        "--temperature", type=float, default=2.0, help="temperature of the softened distributions (default: 2)"
    )
    distill.add_argument(
        "--student-loss",
        choices=STUDENT_LOSSES,
        default="contrastive",
        help="the student's own term: contrastive (its InfoNCE / sigmoid loss) or task (that plus the matching "
        "loss its recipe trains with alone; lambda 0 is then the no-teacher run) (default: contrastive)",
    )
    distill.add_argument(
        "--teacher-cache",
        default=None,
        metavar="DIR",
        help="keep the teacher's outputs for these batches in DIR (TFRecord): the first run writes them, runs "
        "with the same data, seed, batch size and epochs read them instead of running the teacher (default: "
        "the teacher runs on the fly)",
    )
    distill.add_argument("--matching", choices=MATCHING, default=None, help="whose data layout (default: as train)")
    _add_fit_arguments(distill, learning_rate=5e-4)
    distill.add_argument("--train-scenes", type=int, default=16000, help="generated training scenes (default: 16000)")
    distill.add_argument(
        "--validation-scenes", type=int, default=1000, help="generated validation scenes (default: 1000)"
    )
    distill.add_argument(
        "--no-curriculum", action="store_true", help="Shapes: the default caption mix throughout (as train)"
    )
    distill.add_argument(
        "--output-dir",
        default="saved_models/student",
        help="where the student bundle is saved (default: saved_models/student)",
    )
    distill.add_argument("--seed", type=int, default=0, help="random seed for data and weights (default: 0)")
    distill.add_argument("--quiet", action="store_true", help="no progress bars")

    evaluate = commands.add_parser(
        "evaluate",
        help="metrics of a saved model on held-out data (Shapes test split by default)",
        description="Scores one part of the data and says which. Shapes: accuracy, ROC AUC, precision, "
        "recall and accuracy per negative kind. NLVR / labelled manifest / TFRecords: the same binary "
        "metrics (NLVR adds per-sentence accuracy). Flickr8k / COCO / caption manifest: Recall@1/5/10 "
        "both ways, by ITC and with ITM re-ranking.",
    )
    evaluate.add_argument("--model", required=True, help="a folder written by `gemini-tf train`")
    evaluate.add_argument("--data", default="shapes", help="shapes (default) or a data path")
    evaluate.add_argument(
        "--split",
        choices=(*PARTS, "all"),
        default=None,
        help="the part to score (default: test where the data has one, else validation; "
        "all: every row of a manifest or TFRecords)",
    )
    evaluate.add_argument("--scenes", type=int, default=1000, help="Shapes scenes to evaluate (default: 1000)")
    evaluate.add_argument("--seed", type=int, default=0, help="Shapes data seed (default: 0)")
    evaluate.add_argument("--json", action="store_true", help="print metrics as JSON")

    describe = commands.add_parser(
        "describe",
        help="write a caption for each image file (a model trained with --task describe)",
        description="Decodes with a keras-hub sampler: greedy (default), beam search or top-p sampling.",
    )
    describe.add_argument("--model", required=True, help="a folder written by `gemini-tf train --task describe`")
    describe.add_argument("--image", required=True, nargs="+", help="JPEG, PNG, GIF or BMP files")
    describe.add_argument("--sampler", choices=SAMPLERS, default="greedy", help="(default: greedy)")
    describe.add_argument("--beams", type=int, default=4, help="beam width of --sampler beam (default: 4)")
    describe.add_argument("--top-p", type=float, default=0.9, help="nucleus of --sampler top_p (default: 0.9)")
    describe.add_argument(
        "--rerank",
        default=None,
        metavar="MATCHER_MODEL",
        help="a matching model (task itm): choose among the --beams beams by log P(caption) + its log-odds of a match",
    )
    describe.add_argument(
        "--max-length",
        type=int,
        default=None,
        help="tokens per caption, [CLS] and [SEP] included (default: the model's)",
    )

    predict = commands.add_parser("predict", help="probability that a text matches (or is true of) an image file")
    predict.add_argument("--model", required=True, help="a folder written by `gemini-tf train`")
    predict.add_argument("--image", required=True, help="JPEG, PNG, GIF or BMP file")
    predict.add_argument("--text", required=True, help="caption (itm) or statement (classify)")

    index = commands.add_parser(
        "index",
        help="embed a gallery of images or texts into an index (.npz) for retrieval",
        description="Give the gallery as image files / folders (--images), a text file with one caption "
        "per line (--texts), or a Flickr8k / COCO folder (--data, with --kind image or text).",
    )
    index.add_argument(
        "--model",
        required=True,
        help="a folder written by `gemini-tf train` (with --engine beam also an exported SavedModel version folder)",
    )
    gallery = index.add_mutually_exclusive_group(required=True)
    gallery.add_argument("--images", nargs="+", help="image files or folders of images")
    gallery.add_argument("--texts", help="a text file, one caption per line")
    gallery.add_argument("--data", help="a Flickr8k or COCO folder, or a caption manifest")
    index.add_argument(
        "--split", choices=PARTS, default=None, help="part of --data (default: test where it has one, else validation)"
    )
    index.add_argument("--kind", choices=KINDS, default="image", help="what to index from --data")
    index.add_argument("--out", required=True, help="index file to write (.npz)")
    index.add_argument(
        "--search",
        choices=SEARCH_MODES,
        default="auto",
        help=f"exact, ann (approximate: a faiss IVF index, stored in the file), or auto: ann from "
        f"{ANN_THRESHOLD:,} items on (default)",
    )
    _add_engine_arguments(index, ENGINES, RUNNERS, "embed with Beam RunInference over the exported SavedModel")

    retrieve = commands.add_parser("retrieve", help="top-k of an index for a text or an image query")
    retrieve.add_argument("--model", required=True, help="the model that built the index")
    retrieve.add_argument("--index", required=True, help="an index written by `gemini-tf index`")
    query = retrieve.add_mutually_exclusive_group(required=True)
    query.add_argument("--text", help="find images for this text (image index)")
    query.add_argument("--image", help="find captions for this image file (text index)")
    retrieve.add_argument("--k", type=int, default=5, help="results to show (default: 5)")
    retrieve.add_argument(
        "--rerank", type=int, default=None, metavar="K", help="re-rank the top K with the ITM head (ALBEF's k_test)"
    )

    data = commands.add_parser("data", help="data tools: convert a manifest to sharded TFRecords")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    convert = data_commands.add_parser(
        "convert",
        help="manifest (.csv/.jsonl: image,text[,label]) -> sharded TFRecords",
        description="Streams the manifest row by row into --shards TFRecord files of tf.train.Example "
        "(image bytes, text, label, image key, row). Bad rows are skipped and summarised (report.json "
        "in --out).",
    )
    convert.add_argument("manifest", help="a .csv or .jsonl manifest")
    convert.add_argument("--out", required=True, help="output folder (must hold no .tfrecord files)")
    convert.add_argument("--shards", type=int, default=8, help="number of shard files (default: 8)")
    convert.add_argument("--strict", action="store_true", help="stop at the first bad row")
    convert.add_argument(
        "--allow-outside-root", action="store_true", help="let image paths climb out of the manifest's folder with .."
    )
    _add_engine_arguments(convert, ENGINES, RUNNERS, "run the conversion as an Apache Beam pipeline")

    export = commands.add_parser(
        "export",
        help="export a trained model for TF Serving (SavedModel) or devices (TFLite)",
        description="Write saved_models/NAME/VERSION/ (TF Serving layout, raw image bytes + raw "
        "text in) and update saved_models/models.config. With --format tflite, also convert "
        "that SavedModel to saved_models/NAME/tflite/{tensors,text}_{QUANTIZE}.tflite "
        "(describe models: describe_{QUANTIZE}.tflite, no int8).",
    )
    export.add_argument("--model", required=True, help="a folder written by `gemini-tf train`")
    export.add_argument("--name", required=True, help="model name (the TF Serving MODEL_NAME)")
    export.add_argument("--version", type=int, default=None, help="version number (default: next free)")
    export.add_argument("--base-dir", default="saved_models", help="TF Serving model root (default: saved_models)")
    export.add_argument("--format", choices=("saved_model", "tflite"), default="saved_model")
    export.add_argument(
        "--quantize",
        nargs="+",
        choices=QUANTIZATIONS,
        default=["none"],
        help="TFLite variants to write (default: none)",
    )
    export.add_argument(
        "--calibration-data",
        default=None,
        metavar="PATH",
        help="int8 calibration data (default: the training data recorded in the model)",
    )
    return parser


def _add_model_arguments(parser: argparse.ArgumentParser, presets, fusions) -> None:
    parser.add_argument(
        "--preset", choices=sorted(presets), default=None, help="model size (default: tiny, or the --init model's)"
    )
    parser.add_argument(
        "--fusion",
        choices=fusions,
        default=None,
        help="how text and image meet (default: the preset's, cross_attention for tiny and small; "
        "or the --init model's)",
    )


def _add_fit_arguments(parser: argparse.ArgumentParser, learning_rate: float) -> None:
    parser.add_argument("--epochs", type=int, default=5, help="training epochs (default: 5)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per batch (default: 32)")
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=learning_rate,
        help=f"peak AdamW learning rate (default: {learning_rate:g})",
    )


def _add_size_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--image-size",
        type=int,
        nargs=2,
        metavar=("HEIGHT", "WIDTH"),
        default=None,
        help="model input size, multiples of the patch size (default: the preset's)",
    )
    parser.add_argument("--patch-size", type=int, default=None, help="image patch size, a power of two (default: 16)")
    parser.add_argument("--sequence-length", type=int, default=None, help="tokens per text (default: the preset's)")
    parser.add_argument(
        "--vocabulary-size",
        type=int,
        default=None,
        help="WordPiece vocabulary size (default: 1000; with --init: the pre-trained one)",
    )


def _add_engine_arguments(parser: argparse.ArgumentParser, engines, runners, beam_help: str) -> None:
    parser.add_argument(
        "--engine", choices=engines, default="single", help=f"single: this process (default); beam: {beam_help}"
    )
    parser.add_argument(
        "--runner",
        choices=runners,
        default="DirectRunner",
        help="Beam runner (default: DirectRunner with 2 worker processes); others need their --beam-option",
    )
    parser.add_argument(
        "--beam-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Beam pipeline option, repeatable (e.g. direct_num_workers=4, project=..., temp_location=...)",
    )


@contextlib.contextmanager
def _silenced_stderr():
    """Points file descriptor 2 at /dev/null: TensorFlow's C++ start-up lines bypass Python's sys.stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def start_tensorflow_quietly() -> None:
    """Imports TensorFlow and finds its devices without the start-up logging (unless the user set a level)."""
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    with _silenced_stderr():
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers its ops, logging included, here)

        tf.config.list_physical_devices()
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    start_tensorflow_quietly()
    args = build_parser().parse_args(argv)
    # The package logs (data reports, warnings) to the "gemini_tf" logger; the command shows them.
    logger = logging.getLogger("gemini_tf")
    handler = logging.StreamHandler(sys.stderr)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        return COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError, FileExistsError) as error:  # DataError is a ValueError
        print(f"gemini-tf {args.command}: error: {error}", file=sys.stderr)
        return 2
    finally:
        logger.removeHandler(handler)


def _config_overrides(args) -> dict:
    """The model options given on the command line."""
    return {
        key: value
        for key, value in (
            ("image_size", args.image_size),
            ("patch_size", args.patch_size),
            ("sequence_length", args.sequence_length),
            ("contrastive_loss", getattr(args, "contrastive_loss", None)),
            ("decoder_layers", getattr(args, "decoder_layers", None)),
            ("phrase_evidence", True if getattr(args, "phrase_evidence", False) else None),
        )
        if value is not None
    }


def _contrastive_options(args):
    """`ContrastiveOptions` from --itm-warmup / --momentum-distill / --distill-weight; None when none is given
    (the recipe's default for the data)."""
    from gemini_tf.training.recipes import ContrastiveOptions

    given = {"itm_warmup": args.itm_warmup, "momentum": args.momentum_distill, "distill_weight": args.distill_weight}
    if all(value is None for value in given.values()):
        return None
    if given["momentum"] == 0:
        given["momentum"] = None  # --momentum-distill 0: off
    return ContrastiveOptions(**{name: value for name, value in given.items() if value is not None})


def _train(args) -> int:
    from gemini_tf.evaluation import format_table
    from gemini_tf.training import train

    bundle = train(
        args.output_dir,
        args.data,
        task=args.task,
        matching=args.matching,
        preset=args.preset,
        fusion=args.fusion,
        config_overrides=_config_overrides(args),
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        vocabulary_size=args.vocabulary_size,
        train_scenes=args.train_scenes,
        validation_scenes=args.validation_scenes,
        curriculum=not args.no_curriculum,
        train_style=args.train_style,
        hold_out=not args.all_combinations,
        init=args.init,
        freeze=args.freeze,
        strict=args.strict,
        allow_outside_root=args.allow_outside_root,
        seed=args.seed,
        strategy=args.strategy,
        precision=args.precision,
        verbose=0 if args.quiet else "auto",
        contrastive=_contrastive_options(args),
    )
    if not bundle.metrics:  # a non-chief worker of a multi-worker cluster: the chief evaluates and saves
        print("trained as a worker of the multi-worker cluster; the chief worker saved the model")
        return 0
    print(f"saved to {args.output_dir}\nvalidation:")
    print(format_table({_model_name(bundle): bundle.metrics}))
    return 0


def _model_name(bundle) -> str:
    kind = "describe" if bundle.config.task == "describe" else bundle.config.fusion
    return f"{kind} ({bundle.config.hidden_dim} wide)"


def _pretrain(args) -> int:
    from gemini_tf.evaluation import format_table
    from gemini_tf.training.pretrain import pretrain

    bundle = pretrain(
        args.output_dir,
        args.objective,
        world=args.world,
        texts=args.text,
        init=args.init,
        preset=args.preset,
        fusion=args.fusion,
        config_overrides=_config_overrides(args),
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        vocabulary_size=args.vocabulary_size,
        scenes=args.scenes,
        seed=args.seed,
        verbose=0 if args.quiet else "auto",
    )
    print(f"saved to {args.output_dir} (fine-tune it with: gemini-tf train --init {args.output_dir} ...)\nvalidation:")
    print(format_table({f"{args.objective}: {_model_name(bundle)}": bundle.metrics}))
    return 0


def _distill(args) -> int:
    from gemini_tf.evaluation import format_table
    from gemini_tf.training.distill import distill

    bundle = distill(
        args.output_dir,
        args.teacher,
        kd_weight=args.kd_weight,
        temperature=args.temperature,
        student_loss=args.student_loss,
        teacher_cache=args.teacher_cache,
        preset=args.preset,
        data=args.data,
        fusion=args.fusion,
        matching=args.matching,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        train_scenes=args.train_scenes,
        validation_scenes=args.validation_scenes,
        curriculum=not args.no_curriculum,
        seed=args.seed,
        verbose=0 if args.quiet else "auto",
    )
    print(f"saved to {args.output_dir} ({bundle.model.count_params():,} parameters)\nvalidation:")
    print(format_table({f"student: {_model_name(bundle)}": bundle.metrics}))
    return 0


def _evaluate(args) -> int:
    from gemini_tf.bundle import load
    from gemini_tf.evaluation import evaluate, format_table, scored_part

    bundle = load(args.model)
    source, part = scored_part(bundle, args.data, args.split, args.scenes, args.seed)
    metrics = evaluate(bundle, source, part)
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        print(f"scored {int(metrics['examples'])} examples of {source.describe(part)}:")
        print(format_table({os.path.basename(os.path.normpath(args.model)): metrics}))
    return 0


def _predict(args) -> int:
    from gemini_tf.bundle import load

    if not os.path.isfile(args.image):
        raise FileNotFoundError(f"Image file not found: {args.image}")
    bundle = load(args.model)
    probability = float(bundle.predict([args.image], [args.text])[0])
    print(json.dumps({"probability": round(probability, 6), "label": bundle.label_names[int(probability >= 0.5)]}))
    return 0


def _describe(args) -> int:
    from gemini_tf.bundle import load

    missing = [path for path in args.image if not os.path.isfile(path)]
    if missing:
        raise FileNotFoundError(f"Image file not found: {missing[0]}")
    bundle = load(args.model)
    captions = bundle.describe(
        args.image,
        sampler=args.sampler,
        num_beams=args.beams,
        top_p=args.top_p,
        max_length=args.max_length,
        rerank=load(args.rerank) if args.rerank else None,
    )
    for path, caption in zip(args.image, captions):
        print(json.dumps({"image": path, "caption": caption}))
    return 0


def _index(args) -> int:
    from gemini_tf.bundle import load
    from gemini_tf.data.sources import open_source
    from gemini_tf.retrieval import build_index, image_files

    if args.images:
        items, kind = image_files(args.images), "image"
    elif args.texts:
        with open(args.texts, encoding="utf-8") as f:
            items, kind = [line.strip() for line in f if line.strip()], "text"
    else:
        source = open_source(args.data)
        captions = source.captions(args.split or source.held_out_part)
        items, kind = (list(captions.images), "image") if args.kind == "image" else (captions.texts, "text")
    if args.engine == "beam":
        from gemini_tf.beam.embed import build_index_beam
        from gemini_tf.beam.options import parse_beam_options

        options = parse_beam_options(args.beam_option)
        index = build_index_beam(args.model, items, kind, args.runner, options, search_mode=args.search)
    else:
        index = build_index(load(args.model), items, kind, progress=True, search_mode=args.search)
    index.save(args.out)
    print(f"indexed {len(index)} {kind}s ({index.search_mode} search) -> {args.out}")
    return 0


def _retrieve(args) -> int:
    from gemini_tf.bundle import load
    from gemini_tf.retrieval import Index, query

    if not os.path.isfile(args.index):
        raise FileNotFoundError(f"Index file not found: {args.index}")
    if args.image and not os.path.isfile(args.image):
        raise FileNotFoundError(f"Image file not found: {args.image}")
    index = Index.load(args.index)
    bundle = load(args.model)
    for rank, (item, score) in enumerate(query(bundle, index, args.text, args.image, args.k, args.rerank), 1):
        print(f"{rank:>3}  {score:7.4f}  {item}")
    return 0


def _data(args) -> int:
    if args.engine == "beam":
        from gemini_tf.beam.convert import convert_manifest_beam
        from gemini_tf.beam.options import parse_beam_options

        paths, report = convert_manifest_beam(
            args.manifest,
            args.out,
            args.shards,
            args.strict,
            args.allow_outside_root,
            args.runner,
            parse_beam_options(args.beam_option),
        )
    else:
        from gemini_tf.data.tfrecords import convert_manifest

        paths, report = convert_manifest(args.manifest, args.out, args.shards, args.strict, args.allow_outside_root)
    print(report.summary())
    print(f"wrote {report.used} examples to {len(paths)} shards in {args.out}")
    return 0


def _export(args) -> int:
    from gemini_tf.bundle import load
    from gemini_tf.export.saved_model import export_saved_model

    bundle = load(args.model)
    path = export_saved_model(bundle, args.name, args.base_dir, args.version)
    print(f"SavedModel: {path}")
    if args.format == "tflite":
        from gemini_tf.export.tflite import INT8_WARNING, export_tflite, representative_data

        data = None
        if "int8" in args.quantize and bundle.model.task != "describe":
            logging.getLogger("gemini_tf").warning(INT8_WARNING)
            data = representative_data(bundle, args.calibration_data)
        for written in export_tflite(
            path, os.path.join(args.base_dir, args.name, "tflite"), tuple(args.quantize), representative_data=data
        ):
            print(f"TFLite: {written} ({os.path.getsize(written) / 1e6:.2f} MB)")
    return 0


COMMANDS = {
    "train": _train,
    "pretrain": _pretrain,
    "distill": _distill,
    "evaluate": _evaluate,
    "predict": _predict,
    "describe": _describe,
    "export": _export,
    "index": _index,
    "retrieve": _retrieve,
    "data": _data,
}
