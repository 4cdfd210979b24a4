"""`gemini-tf` (also `python -m gemini_tf`): train, evaluate and predict from the shell.

Every command calls the package; no logic lives here beyond argument parsing
and turning known errors into one readable line (exit code 2).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from gemini_tf.config import FUSIONS, PRESETS, TASKS

EXAMPLES = """examples:
  gemini-tf train --output-dir saved_models/quickstart
  gemini-tf train --task classify --fusion concat --epochs 3 --output-dir saved_models/statements
  gemini-tf evaluate --model saved_models/quickstart
  gemini-tf predict --model saved_models/quickstart --image cat.png --text "a small red circle"
  gemini-tf export --model saved_models/quickstart --name shapes
  gemini-tf export --model saved_models/quickstart --name shapes --format tflite --quantize none int8
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gemini-tf",
        description="Train, evaluate and query small image-text models (Keras 3 / TensorFlow).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train", help="train a model on the embedded Shapes data and save it",
        description="Train a Gemini model with model.fit and save a bundle (model.keras, "
        "vocab.txt, gemini_tf.json) to --output-dir.",
    )
    train.add_argument("--task", choices=TASKS, default="itm",
                       help="itm: does the caption describe the image?; classify: is the statement true? (default: itm)")
    train.add_argument("--data", default="shapes", help="training data (default: shapes, generated on the fly)")
    train.add_argument("--preset", default="tiny", help=f"model size: {', '.join(PRESETS)} (default: tiny)")
    train.add_argument("--fusion", default="cross_attention", help=f"{' or '.join(FUSIONS)} (default: cross_attention)")
    train.add_argument("--epochs", type=int, default=5, help="training epochs (default: 5)")
    train.add_argument("--batch-size", type=int, default=32, help="images per batch (default: 32)")
    train.add_argument("--learning-rate", type=float, default=5e-4, help="peak AdamW learning rate (default: 5e-4)")
    train.add_argument("--train-scenes", type=int, default=16000, help="Shapes training scenes (default: 16000)")
    train.add_argument("--validation-scenes", type=int, default=1000, help="Shapes validation scenes (default: 1000)")
    train.add_argument("--output-dir", default="saved_models/gemini", help="where the bundle is saved (default: saved_models/gemini)")
    train.add_argument("--seed", type=int, default=0, help="random seed for data and weights (default: 0)")
    train.add_argument("--strategy", choices=("default", "mirrored"), default="default",
                       help="tf.distribute strategy: default (one device) or mirrored (all local devices)")
    train.add_argument("--quiet", action="store_true", help="no progress bars")

    evaluate = commands.add_parser(
        "evaluate", help="metrics of a saved model on the Shapes test split",
        description="Accuracy, ROC AUC, precision and recall, and accuracy per negative kind.",
    )
    evaluate.add_argument("--model", required=True, help="a folder written by `gemini-tf train`")
    evaluate.add_argument("--split", choices=("validation", "test"), default="test")
    evaluate.add_argument("--scenes", type=int, default=1000, help="scenes to evaluate (default: 1000)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--json", action="store_true", help="print metrics as JSON")

    predict = commands.add_parser(
        "predict", help="probability that a text matches (or is true of) an image file",
    )
    predict.add_argument("--model", required=True, help="a folder written by `gemini-tf train`")
    predict.add_argument("--image", required=True, help="JPEG, PNG, GIF or BMP file")
    predict.add_argument("--text", required=True, help="caption (itm) or statement (classify)")

    export = commands.add_parser(
        "export", help="export a trained model for TF Serving (SavedModel) or devices (TFLite)",
        description="Write saved_models/NAME/VERSION/ (TF Serving layout, raw image bytes + raw "
        "text in) and update saved_models/models.config. With --format tflite, also convert "
        "that SavedModel to saved_models/NAME/tflite/{tensors,text}_{QUANTIZE}.tflite.",
    )
    export.add_argument("--model", required=True, help="a folder written by `gemini-tf train`")
    export.add_argument("--name", required=True, help="model name (the TF Serving MODEL_NAME)")
    export.add_argument("--version", type=int, default=None, help="version number (default: next free)")
    export.add_argument("--base-dir", default="saved_models", help="TF Serving model root (default: saved_models)")
    export.add_argument("--format", choices=("saved_model", "tflite"), default="saved_model")
    export.add_argument("--quantize", nargs="+", choices=("none", "dynamic", "float16", "int8"),
                        default=["none"], help="TFLite variants to write (default: none)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"gemini-tf {args.command}: error: {error}", file=sys.stderr)
        return 2


def _train(args) -> int:
    from gemini_tf.evaluation import format_table
    from gemini_tf.training import train

    if args.preset not in PRESETS:
        raise ValueError(f"Unknown preset {args.preset!r}; choose one of {sorted(PRESETS)}.")
    if args.fusion not in FUSIONS:
        raise ValueError(f"Unknown fusion {args.fusion!r}; choose one of {list(FUSIONS)}.")
    bundle = train(
        args.output_dir, task=args.task, data=args.data, preset=args.preset, fusion=args.fusion,
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        train_scenes=args.train_scenes, validation_scenes=args.validation_scenes,
        seed=args.seed, strategy=args.strategy, verbose=0 if args.quiet else "auto",
    )
    print(f"saved to {args.output_dir}\nvalidation:")
    print(format_table({f"{args.preset}/{args.fusion}": bundle.metrics}))
    return 0


def _evaluate(args) -> int:
    from gemini_tf.bundle import load
    from gemini_tf.evaluation import evaluate_shapes, format_table

    bundle = load(args.model)
    metrics = evaluate_shapes(bundle, args.split, args.scenes, args.seed)
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        print(f"{args.split} split, {args.scenes} scenes:")
        print(format_table({os.path.basename(os.path.normpath(args.model)): metrics}))
    return 0


def _predict(args) -> int:
    from gemini_tf.bundle import load

    if not os.path.isfile(args.image):
        raise FileNotFoundError(f"Image file not found: {args.image}")
    bundle = load(args.model)
    probability = float(bundle.predict([args.image], [args.text])[0])
    print(json.dumps({"probability": round(probability, 6),
                      "label": bundle.label_names[int(probability >= 0.5)]}))
    return 0


def _export(args) -> int:
    from gemini_tf.bundle import load
    from gemini_tf.export.saved_model import export_saved_model

    bundle = load(args.model)
    path = export_saved_model(bundle, args.name, args.base_dir, args.version)
    print(f"SavedModel: {path}")
    if args.format == "tflite":
        from gemini_tf.export.tflite import export_tflite, representative_shapes_data

        data = representative_shapes_data(bundle) if "int8" in args.quantize else None
        for written in export_tflite(path, os.path.join(args.base_dir, args.name, "tflite"),
                                     tuple(args.quantize), representative_data=data):
            print(f"TFLite: {written} ({os.path.getsize(written) / 1e6:.2f} MB)")
    return 0


COMMANDS = {"train": _train, "evaluate": _evaluate, "predict": _predict, "export": _export}
