"""Shapes: joint ITC + ITM pre-training vs the foundation's ITM-only (groups) training,
plus retrieval query latency over a 10,000-image gallery.

    python benchmarks/shapes_retrieval.py            # trains tiny/cross_attention, contrastive
    python benchmarks/shapes_retrieval.py --model saved_models/shapes_contrastive  # reuse

Reports text->image Recall@1/5/10 on a 1,000-image test gallery (one true caption
per image), the ITM accuracy per negative kind (evaluate_shapes, the same test
as the quickstart) and the latency of `retrieval.query` (embed the text, search,
optionally ITM re-rank) against an index of 10,000 test images.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import gemini_tf
from gemini_tf import retrieval
from gemini_tf.data import shapes
from gemini_tf.evaluation import evaluate_shapes

from results_file import merge_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a contrastive bundle to evaluate instead of training")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--loss", default="infonce", choices=("infonce", "sigmoid"))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--train-scenes", type=int, default=16000)
    parser.add_argument("--gallery", type=int, default=10000, help="images in the latency gallery")
    parser.add_argument("--output-dir", default="saved_models/shapes_contrastive")
    parser.add_argument("--results", default="benchmarks/results/shapes_retrieval.json")
    args = parser.parse_args()

    results = {"settings": vars(args)}
    if args.model:
        bundle = gemini_tf.load(args.model)
    else:
        start = time.time()
        bundle = gemini_tf.train(
            args.output_dir,
            matching="contrastive",
            preset=args.preset,
            epochs=args.epochs,
            train_scenes=args.train_scenes,
            config_overrides={"contrastive_loss": args.loss},
        )
        results["train_minutes"] = (time.time() - start) / 60

    test = shapes.make_pairs(1000, "test", seed=0)
    positive = test.labels == 1
    texts = [t for t, p in zip(test.texts, positive) if p]
    recall = retrieval.evaluate_retrieval(
        bundle.model,
        bundle.preprocessor,
        test.images[positive],
        texts,
        np.arange(len(texts)),
        bundle.config.image_size,
        k_test=16,
    )
    results["gallery_1000"] = recall
    results["itm_by_kind"] = evaluate_shapes(bundle, "test", 1000)

    scenes = shapes.generate_scenes(args.gallery, "test", seed=1)
    images = shapes.render(scenes, bundle.config.image_size[0])
    start = time.time()
    embeddings = retrieval.embed_images(bundle.model, images, bundle.config.image_size)
    results["index_seconds_per_1000"] = (time.time() - start) / len(images) * 1000
    index = retrieval.Index(embeddings, [str(i) for i in range(len(images))], "image")
    queries = texts[:50]
    for name, rerank in (("query_ms", None), ("query_rerank16_ms", 16)):
        timings = []
        for text in [queries[0], *queries]:  # the first call traces; dropped below
            start = time.perf_counter()
            if rerank:
                # Re-ranking needs the images; the index stores ids, so look them up in memory.
                top = retrieval.query(bundle, index, text=text, k=rerank)
                bundle.predict(images[[int(i) for i, _ in top]], [text] * rerank)
            else:
                retrieval.query(bundle, index, text=text, k=10)
            timings.append(1000 * (time.perf_counter() - start))
        timings = timings[1:]
        results[name] = {
            "median": float(np.median(timings)),
            "p90": float(np.percentile(timings, 90)),
            "gallery": len(index),
        }
    print(json.dumps({k: v for k, v in results.items() if k != "settings"}, indent=2))
    merge_results(args.results, results)  # keeps train_minutes when re-evaluating


if __name__ == "__main__":
    main()
