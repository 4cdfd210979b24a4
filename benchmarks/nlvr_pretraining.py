"""Pre-train, then fine-tune on NLVR (issue #12): every pre-training variant on the same fine-tuning run.

    python benchmarks/nlvr_pretraining.py                       # all rows; data from $GEMINI_TF_DATA/nlvr
    python benchmarks/nlvr_pretraining.py --rows none statements --scenes 8000
    python benchmarks/nlvr_pretraining.py --finetune-only --matching image_listwise   # reuse the bundles

Stages, each timed (2 CPU cores):

1. `pretrain("mlm")`: the text encoder on NLVR's training sentences (dev
   directories 0-4) and statements about `--scenes` generated scenes.
2. `pretrain("statements")`: listwise true/false statements about `--scenes`
   NLVR-world scenes; scored zero-shot on NLVR test (no fine-tuning).
3. "both": statements pre-training that starts from the MLM bundle.
4. Fine-tuning on NLVR train (binary cross-entropy, or `--matching
   image_listwise`: NLVR's own contrast; early stopping on directory 5), from
   nothing ("none") and from each pre-trained bundle, with the same settings;
   scored on NLVR test: accuracy per image, per sentence (majority of the six
   renderings) and consistency (all six right).

The majority / TF-IDF / text-only / image-only rows come from
`benchmarks/classification.py --data nlvr` (same parts, sizes and fine-tuning settings).
Writes benchmarks/results/nlvr_pretraining.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from gemini_tf.data.paths import data_dir
from gemini_tf.data.sources import open_source
from gemini_tf.evaluation import evaluate
from gemini_tf.training import train
from gemini_tf.training.pretrain import pretrain

from results_file import merge_results

ROWS = ("none", "mlm", "statements", "both")
SCORES = ("accuracy", "sentence_accuracy", "consistency", "roc_auc")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-path", default=None, help="NLVR folder (default: $GEMINI_TF_DATA/nlvr)")
    parser.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS))
    parser.add_argument("--fusion", default="cross_attention")
    parser.add_argument("--scenes", type=int, default=32000, help="generated scenes for statement pre-training")
    parser.add_argument("--pretrain-epochs", type=int, default=3)
    parser.add_argument("--mlm-epochs", type=int, default=10)
    parser.add_argument("--finetune-epochs", type=int, default=8)
    parser.add_argument("--finetune-learning-rate", type=float, default=3e-4)
    parser.add_argument("--freeze", default="image", help="fine-tuning of pre-trained bundles: text, image or none")
    parser.add_argument(
        "--matching",
        default="binary",
        help="fine-tuning recipe: binary (cross-entropy on pairs) or image_listwise (NLVR's own contrast)",
    )
    parser.add_argument(
        "--finetune-only", action="store_true", help="reuse the pre-trained bundles of --output-dir; only fine-tune"
    )
    parser.add_argument("--output-dir", default="saved_models/nlvr_pretraining")
    parser.add_argument("--results", default="benchmarks/results/nlvr_pretraining.json")
    args = parser.parse_args()
    nlvr = data_dir("nlvr", args.data_path)
    source = open_source(nlvr)
    results: dict = {"settings": vars(args)}
    out = lambda name: os.path.join(args.output_dir, name)  # noqa: E731

    def timed(name: str, stage, *positional, **options):
        start = time.time()
        bundle = stage(*positional, **options)
        results.setdefault(name, {})["minutes"] = (time.time() - start) / 60
        return bundle

    def scored(name: str, bundle) -> None:
        metrics = evaluate(bundle, source, "test")
        results.setdefault(name, {}).update({key: metrics[key] for key in SCORES})
        print(name, json.dumps(results[name]), flush=True)
        merge_results(args.results, results)

    statements = {"scenes": args.scenes, "epochs": args.pretrain_epochs, "verbose": 2}
    pretraining = not args.finetune_only
    if pretraining and {"mlm", "both"} & set(args.rows):
        mlm = {"scenes": args.scenes, "epochs": args.mlm_epochs, "fusion": args.fusion, "verbose": 2}
        timed("pretrain_mlm", pretrain, out("mlm"), "mlm", texts=[nlvr, "nlvr_world"], **mlm)
    if pretraining and "statements" in args.rows:
        bundle = timed(
            "pretrain_statements", pretrain, out("statements"), texts=[nlvr], fusion=args.fusion, **statements
        )
        scored("zero_shot_statements", bundle)
    if pretraining and "both" in args.rows:
        bundle = timed("pretrain_both", pretrain, out("both"), init=out("mlm"), **statements)
        scored("zero_shot_both", bundle)
    fine_tuning = {"task": "classify", "matching": args.matching, "epochs": args.finetune_epochs, "verbose": 2}
    for row in args.rows:
        if row == "none":
            start = {"fusion": args.fusion, "config_overrides": {"image_size": (64, 256), "sequence_length": 32}}
        else:
            start = {"init": out(row), "freeze": args.freeze}
        name = f"finetune_{row}" + ("" if args.matching == "binary" else f"_{args.matching}")
        bundle = timed(name, train, out(name), nlvr, learning_rate=args.finetune_learning_rate, **fine_tuning, **start)
        scored(name, bundle)


if __name__ == "__main__":
    main()
