"""Flickr8k retrieval: gemini_tf (ITC, and ITC + ITM re-ranking) vs keras-hub CLIP, same budget.

Both models see the same images, captions, tokenizer, augmentation, batch
size, epochs, optimizer and contrastive loss; CLIP gets the layer count whose
parameter count is closest to gemini_tf's. Reports Recall@1/5/10 both ways and
r_mean on Flickr8k `dev` (1,000 images x 5 captions), the source's `test` part in
a copy without `splits/test.txt`; early stopping watches the `validation` part,
images the split rule takes out of `splits/train.txt`, never `dev`.

    python benchmarks/flickr8k_retrieval.py --epochs 4

float32 vs mixed_bfloat16 after the same epochs (rows "gemini" and "gemini_mixed_bfloat16"):

    python benchmarks/flickr8k_retrieval.py --models gemini --epochs 1 \
        --output-dir saved_models/flickr8k_precision --results benchmarks/results/flickr8k_precision.json
    (the same with --precision mixed_bfloat16)
"""

from __future__ import annotations

import argparse
import json
import os
import time

import keras

import gemini_tf
from gemini_tf.baselines.clip import clip_matcher
from gemini_tf.data.paths import data_dir
from gemini_tf.data.sources import open_source
from gemini_tf.retrieval import evaluate_retrieval
from gemini_tf.training import FitSettings, adamw, fit
from gemini_tf.training.loop import PRECISIONS
from gemini_tf.training.recipes import ContrastiveOptions

from results_file import merge_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="Flickr8k folder (default: $GEMINI_TF_DATA/flickr8k)")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--fusion", default="cross_attention")
    parser.add_argument("--loss", default="infonce", choices=("infonce", "sigmoid"))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--patch-size", type=int, default=8)
    parser.add_argument("--sequence-length", type=int, default=24)
    parser.add_argument("--vocabulary-size", type=int, default=3000)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--k-test", type=int, default=16)
    parser.add_argument("--precision", default="float32", choices=PRECISIONS)
    parser.add_argument("--itm-warmup", type=float, default=0.0, help="share of the steps that train ITC alone")
    parser.add_argument("--momentum", type=float, default=None, help="momentum distillation's EMA momentum")
    parser.add_argument("--distill-weight", type=float, default=0.4, help="momentum distillation's α")
    parser.add_argument("--clip-epochs", type=int, default=None, help="CLIP's epochs (default: --epochs)")
    parser.add_argument("--name", default=None, help="the gemini row's name (default: gemini[_PRECISION])")
    parser.add_argument("--models", nargs="+", default=["gemini", "clip"], choices=("gemini", "clip"))
    parser.add_argument("--output-dir", default="saved_models/flickr8k")
    parser.add_argument("--results", default="benchmarks/results/flickr8k_retrieval.json")
    args = parser.parse_args()

    path = data_dir("flickr8k", args.data)
    size = (args.image_size, args.image_size)
    overrides = {
        "image_size": size,
        "patch_size": args.patch_size,
        "sequence_length": args.sequence_length,
        "dropout": args.dropout,
        "contrastive_loss": args.loss,
    }
    source = open_source(path, progress=True)
    dev = source.captions(source.held_out_part)  # splits/dev.txt; validation comes out of train.txt
    dev_images = dev.pixels(size, progress=True)
    results = {"settings": vars(args), "dev": {"images": dev.num_images, "captions": len(dev)}}

    name = args.name or ("gemini" if args.precision == "float32" else f"gemini_{args.precision}")
    start = time.time()
    bundle = (
        gemini_tf.train(
            os.path.join(args.output_dir, name),
            path,
            preset=args.preset,
            fusion=args.fusion,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            vocabulary_size=args.vocabulary_size,
            config_overrides=overrides,
            precision=args.precision,
            contrastive=ContrastiveOptions(args.itm_warmup, args.momentum, args.distill_weight),
        )
        if "gemini" in args.models
        else gemini_tf.load(os.path.join(args.output_dir, name))
    )
    if "gemini" in args.models:
        results[name] = {
            "settings": vars(args),
            "train_minutes": (time.time() - start) / 60,
            "parameters": bundle.model.count_params(),
            **evaluate_retrieval(
                bundle.model,
                bundle.preprocessor,
                dev_images,
                dev.texts,
                dev.image_index,
                size,
                k_test=args.k_test,
                progress=True,
            ),
        }
        print(json.dumps(results[name], indent=2))
        merge_results(args.results, results)

    if "clip" in args.models:
        keras.utils.set_random_seed(0)
        settings = FitSettings(args.clip_epochs or args.epochs, args.batch_size, args.learning_rate)
        train_set = source.captions("train")
        train_data = train_set.dataset(bundle.preprocessor, size, args.batch_size, shuffle=True, augment=True)
        validation_data = source.captions("validation").dataset(bundle.preprocessor, size, args.batch_size)
        sep_id = bundle.preprocessor.vocabulary.index("[SEP]")
        clip = clip_matcher(
            bundle.config,
            bundle.model.count_params(),
            sep_id,
            embedding_dim=bundle.config.embedding_dim,
            loss=args.loss,
        )
        clip.compile(optimizer=adamw(args.learning_rate, settings.steps(len(train_set), drop_remainder=True)))
        clip(next(iter(train_data))[0])  # BackupAndRestore needs built weights.
        start = time.time()
        fit(clip, train_data, validation_data, settings, os.path.join(args.output_dir, "clip"))
        results["clip"] = {
            "epochs": settings.epochs,
            "train_minutes": (time.time() - start) / 60,
            "parameters": clip.count_params(),
            "layers_per_tower": clip.backbone.vision_encoder.num_layers,
            **evaluate_retrieval(clip, bundle.preprocessor, dev_images, dev.texts, dev.image_index, size),
        }
        print(json.dumps(results["clip"], indent=2))

    merge_results(args.results, results)


if __name__ == "__main__":
    main()
