"""Batch embedding of a gallery on Beam (RunInference over the exported SavedModel) vs `gemini-tf index`.

Embeds every Flickr8k image (train + dev) with the single-process
`build_index` and with `build_index_beam` (DirectRunner, 2 worker processes by
default), reports images/s of each and the largest difference between the two
indexes (target: identical up to 1e-5). The Beam time includes exporting the
bundle to a SavedModel and starting the workers, as a user's run would.

    GEMINI_TF_DATA=../shared/data python benchmarks/beam_index.py --model saved_models/flickr8k/gemini
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from gemini_tf.beam.embed import build_index_beam
from gemini_tf.beam.options import DIRECT_WORKERS
from gemini_tf.bundle import load
from gemini_tf.data.paths import data_dir
from gemini_tf.data.sources import open_source
from gemini_tf.retrieval import build_index

from results_file import merge_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="saved_models/flickr8k/gemini", help="a bundle trained on Flickr8k")
    parser.add_argument("--data", default=None, help="Flickr8k folder (default: $GEMINI_TF_DATA/flickr8k)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images (a quick check)")
    parser.add_argument("--workers", type=int, default=DIRECT_WORKERS, help="Beam DirectRunner worker processes")
    parser.add_argument("--results", default="benchmarks/results/beam_index.json")
    args = parser.parse_args()

    source = open_source(data_dir("flickr8k", args.data))
    images = sorted({image for part in source.parts for image in source.captions(part).images})[: args.limit]
    bundle = load(args.model)
    start = time.time()
    single = build_index(bundle, images, "image", progress=True)
    single_seconds = time.time() - start
    start = time.time()
    beam = build_index_beam(args.model, images, "image", beam_options={"direct_num_workers": str(args.workers)})
    beam_seconds = time.time() - start
    results = {
        "images": len(images),
        "single_images_per_second": len(images) / single_seconds,
        "beam_images_per_second": len(images) / beam_seconds,
        "beam_direct_workers": args.workers,
        "max_abs_difference": float(np.max(np.abs(single.embeddings - beam.embeddings))),
        "same_ids": single.ids == beam.ids,
    }
    print(json.dumps(results, indent=2))
    merge_results(args.results, results)


if __name__ == "__main__":
    main()
