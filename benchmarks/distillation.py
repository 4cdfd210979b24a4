"""Distillation λ table: a `tiny` student of a `small` teacher, against the same student without one.

Every student trains with the teacher's own recipe (data, epochs, learning
rate, batch size) and is scored where the README scores its teacher: Shapes on
the test split (random / hard balanced accuracy), Flickr8k on `dev` (r_mean,
ITC and ITC + ITM re-ranking of the top 16). The "no teacher" row is the same
student architecture trained by `train` with the same recipe.

    python benchmarks/distillation.py --data shapes --teacher saved_models/small_grounded \
        --lambdas 0 0.25 0.5 0.75 1 --no-teacher
    python benchmarks/distillation.py --data flickr8k --teacher saved_models/flickr8k/gemini \
        --lambdas 0 0.5 1 --no-teacher --fusion-layers 1

With --teacher-cache DIR the teacher's outputs come from a `TeacherCache`: the
first run writes it (its time is in the row), the next runs read it. Each row
records the seconds of every epoch (the first includes tracing) and whether the
teacher ran on the fly, wrote the cache or was read from it.

Results go to benchmarks/results/distillation.json, one entry per run, merged.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import gemini_tf
from gemini_tf.data.paths import data_dir
from gemini_tf.evaluation import evaluate
from gemini_tf.models.distillation_trainer import STUDENT_LOSSES
from gemini_tf.training.distill import distill
from gemini_tf.training.teacher_cache import TeacherCache

from results_file import merge_results

# The teachers' recipes (README: "small / grounded + curriculum" and the Flickr8k gemini_tf row).
RECIPES = {
    "shapes": {"epochs": 6, "learning_rate": 1e-3, "train_scenes": 12000},
    "flickr8k": {"epochs": 4, "learning_rate": 5e-4, "batch_size": 64},
}
# The no-teacher student learns its own vocabulary, as its teacher did.
VOCABULARY_SIZE = {"shapes": 1000, "flickr8k": 3000}
SCORES = {"shapes": ("random", "hard", "acc_relation", "acc_swap"), "flickr8k": ("itc/r_mean", "itc+itm/r_mean")}


def scores(bundle, data: str, path: str) -> dict:
    """The README's figures of `bundle`: Shapes test split or Flickr8k dev."""
    metrics = evaluate(bundle, "shapes", "test") if data == "shapes" else evaluate(bundle, path)
    return {key: metrics[key] for key in SCORES[data]}


def teacher_run(cache: str | None, cached_before: bool) -> str:
    """How the teacher took part: on the fly, writing the cache (with its seconds) or read from it."""
    if not cache:
        return "on the fly"
    if cached_before:
        return "read from the cache"
    seconds = sum(part["write_seconds"] for part in TeacherCache(cache).manifest()["parts"].values())
    return f"wrote the cache ({seconds:.0f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=tuple(RECIPES), required=True)
    parser.add_argument("--teacher", required=True, help="the teacher bundle (trained with the README's recipe)")
    parser.add_argument("--lambdas", type=float, nargs="*", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--student-loss", choices=STUDENT_LOSSES, default="contrastive")
    parser.add_argument("--no-teacher", action="store_true", help="also train the student without a teacher")
    parser.add_argument("--fusion-layers", type=int, default=None, help="the student's fusion depth")
    parser.add_argument("--teacher-cache", default=None, help="a TeacherCache folder (written by the first run)")
    parser.add_argument("--suffix", default="", help="appended to the row names (e.g. _cached)")
    parser.add_argument("--output-dir", default="saved_models/distillation")
    parser.add_argument("--results", default="benchmarks/results/distillation.json")
    args = parser.parse_args()

    path = data_dir("flickr8k") if args.data == "flickr8k" else "shapes"
    teacher = gemini_tf.load(args.teacher)
    recipe = {**RECIPES[args.data], "verbose": 2}
    overrides = {"fusion_layers": args.fusion_layers} if args.fusion_layers else {}
    key = lambda name: f"{args.data}/{name}"  # noqa: E731
    merge_results(
        args.results,
        {
            key("teacher"): {
                "model": args.teacher,
                "parameters": teacher.model.count_params(),
                **scores(teacher, args.data, path),
            }
        },
    )

    suffix = ("" if args.student_loss == "contrastive" else f"_{args.student_loss}") + args.suffix
    runs = [(f"lambda_{lam:g}{suffix}", lam) for lam in args.lambdas] + (
        [("no_teacher", None)] if args.no_teacher else []
    )
    for name, lam in runs:
        output = os.path.join(args.output_dir, args.data, name)
        cached = bool(args.teacher_cache and TeacherCache(args.teacher_cache).manifest())
        start = time.time()
        if lam is None:
            inputs = {k: teacher.config.to_dict()[k] for k in ("image_size", "patch_size", "sequence_length")}
            bundle = gemini_tf.train(
                output,
                path,
                preset="tiny",
                fusion=teacher.config.fusion,
                config_overrides={**inputs, "dropout": teacher.config.dropout, **overrides},
                vocabulary_size=VOCABULARY_SIZE[args.data],
                **recipe,
            )
        else:
            bundle = distill(
                output,
                args.teacher,
                kd_weight=lam,
                temperature=args.temperature,
                student_loss=args.student_loss,
                teacher_cache=args.teacher_cache,
                preset="tiny",
                config_overrides=overrides,
                **recipe,
            )
        minutes = (time.time() - start) / 60
        result = {
            "kd_weight": lam,
            "temperature": args.temperature if lam is not None else None,
            "student_loss": args.student_loss if lam is not None else None,
            "parameters": bundle.model.count_params(),
            "train_minutes": minutes,
            "epoch_seconds": bundle.history["epoch_seconds"],
            "teacher_run": "alone" if lam is None else teacher_run(args.teacher_cache, cached),
            **scores(bundle, args.data, path),
        }
        print(name, json.dumps(result, indent=2))
        merge_results(args.results, {key(name): result})


if __name__ == "__main__":
    main()
