"""Approximate (faiss IVF, `gemini_tf.ann`) vs exact search: recall@10, latency, build time, memory.

    python benchmarks/ann.py                                # full size (1M gallery)
    python benchmarks/ann.py --gallery 20000 --queries 50   # a quick check

1. Synthetic galleries of `--gallery` x `--dim` float32 vectors. "clustered" looks
   like real embeddings: each row is a centre drawn from `--clusters` Gaussian
   clusters (random unit directions, cluster sizes from a flat Dirichlet, so some
   clusters are ten times others) plus isotropic noise of norm ~1, then
   L2-normalised (cosine ~0.7 to its centre). "uniform" is normalised Gaussian
   noise, uniform on the sphere: the hard case for any ANN. Queries are fresh
   draws from the same distribution. Reports recall@10 of ANN against exact
   search, p50/p95 latency of one query at a time for both, the ANN build time,
   the RSS growth while building (clean for the first distribution; a later
   build can reuse memory freed by the earlier one) and the index file's size
   and load time.
2. Flickr8k (when `$GEMINI_TF_DATA/flickr8k` or `--data` and the `--model` bundle
   exist): every image of splits/train.txt and splits/dev.txt (~7,000) embedded
   with `retrieval.build_index`, `--flickr-queries` of their captions as text
   queries; recall@10 of ANN (forced: the gallery is below the auto threshold)
   against exact, and text->image R@10 (own image in the top 10) for both.
3. Latency of a text query over a 10,000-row gallery, split into embedding the
   text (the real model) and searching; the gallery is synthetic clustered
   vectors of the model's embedding size, as search time only depends on the
   gallery's size and shape; the queries are Flickr8k captions when available.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np

from gemini_tf.retrieval import Index

from results_file import merge_results

K = 10


def clustered_gallery(n: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    """[n, dim] unit vectors from a mixture of Gaussian clusters of uneven size."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.choice(clusters, size=n, p=rng.dirichlet(np.ones(clusters)))
    x = centres[labels] + rng.standard_normal((n, dim)).astype(np.float32) / np.sqrt(dim)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def uniform_gallery(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def percentiles(milliseconds: list[float]) -> dict[str, float]:
    return {"p50": float(np.median(milliseconds)), "p95": float(np.percentile(milliseconds, 95))}


def single_query_ms(index: Index, queries: np.ndarray) -> dict[str, float]:
    index.search(queries[:1], K)  # warm-up
    timings = []
    for query in queries:
        start = time.perf_counter()
        index.search(query[None], K)
        timings.append(1000 * (time.perf_counter() - start))
    return percentiles(timings)


def recall_against(rows: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / truth.shape[1] for a, b in zip(rows, truth)]))


def batched_rows(index: Index, queries: np.ndarray, batch_size: int = 100) -> np.ndarray:
    return np.concatenate([index.search(queries[i : i + batch_size], K)[0] for i in range(0, len(queries), batch_size)])


def compare(embeddings: np.ndarray, queries: np.ndarray, latency_queries: int) -> dict:
    """Builds an ANN index over `embeddings` and measures it against exact search."""
    ids = [str(i) for i in range(len(embeddings))]
    exact = Index(embeddings, ids, "image", "exact")
    before, start = rss_mb(), time.time()
    ann = Index(embeddings, ids, "image", "ann")
    result = {"build_seconds": time.time() - start, "build_rss_mb": rss_mb() - before}
    result["recall@10"] = recall_against(batched_rows(ann, queries), batched_rows(exact, queries))
    result["exact_ms"] = single_query_ms(exact, queries[:latency_queries])
    result["ann_ms"] = single_query_ms(ann, queries[:latency_queries])
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "gallery.npz")
        ann.save(path)
        result["file_mb"] = os.path.getsize(path) / 2**20  # embeddings + IVF index (which holds its own copy)
        result["embeddings_mb"] = embeddings.nbytes / 2**20
        start = time.time()
        Index.load(path)
        result["load_seconds"] = time.time() - start
    return result


def synthetic(args) -> dict:
    results = {}
    for name in args.distributions:
        total = args.gallery + args.queries
        if name == "clustered":
            vectors = clustered_gallery(total, args.dim, args.clusters, seed=0)
        else:
            vectors = uniform_gallery(total, args.dim, seed=0)
        results[name] = compare(vectors[args.queries :], vectors[: args.queries], args.latency_queries)
        print(name, json.dumps(results[name], indent=2), flush=True)
    return results


def flickr8k_captions(path: str) -> tuple[list[str], list[str], np.ndarray]:
    """Image files, captions and each caption's image row of splits/train.txt + splits/dev.txt."""
    from gemini_tf.data.flickr8k import load_flickr8k

    images, texts, owners = [], [], []
    for split in ("train", "dev"):
        captions = load_flickr8k(path, split)
        owners.append(captions.image_index + len(images))
        images += list(captions.images)
        texts += captions.texts
    return images, texts, np.concatenate(owners)


def flickr8k(bundle, images: list[str], texts: list[str], owners: np.ndarray) -> dict:
    from gemini_tf.retrieval import build_index, embed_texts

    exact = build_index(bundle, images, "image", progress=True, search_mode="exact")
    start = time.time()
    ann = Index(exact.embeddings, exact.ids, "image", "ann")
    build_seconds = time.time() - start
    queries = embed_texts(bundle.model, bundle.preprocessor, texts, progress=True)
    truth, rows = batched_rows(exact, queries), batched_rows(ann, queries)
    return {
        "gallery": len(images),
        "queries": len(texts),
        "build_seconds": build_seconds,
        "recall@10": recall_against(rows, truth),
        "exact_t2i_r10": float(np.mean(np.any(truth == owners[:, None], axis=1))),
        "ann_t2i_r10": float(np.mean(np.any(rows == owners[:, None], axis=1))),
    }


def latency_split(bundle, gallery: int, texts: list[str]) -> dict:
    from gemini_tf.retrieval import embed_texts

    vectors = clustered_gallery(gallery, bundle.config.embedding_dim, 100, seed=1)
    ids = [str(i) for i in range(gallery)]
    indexes = {mode: Index(vectors, ids, "image", mode) for mode in ("exact", "ann")}
    embed_texts(bundle.model, bundle.preprocessor, texts[:1])  # traces once
    timings = {"embed_text_ms": [], "exact_search_ms": [], "ann_search_ms": []}
    for text in texts:
        start = time.perf_counter()
        query = embed_texts(bundle.model, bundle.preprocessor, [text])
        timings["embed_text_ms"].append(1000 * (time.perf_counter() - start))
        for mode, index in indexes.items():
            start = time.perf_counter()
            index.search(query, K)
            timings[f"{mode}_search_ms"].append(1000 * (time.perf_counter() - start))
    return {"gallery": gallery, "queries": len(texts), **{name: percentiles(t) for name, t in timings.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gallery", type=int, default=1_000_000, help="rows of the synthetic galleries")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument(
        "--distributions", nargs="+", default=["clustered", "uniform"], choices=("clustered", "uniform")
    )
    parser.add_argument("--queries", type=int, default=1000, help="queries for recall@10")
    parser.add_argument("--latency-queries", type=int, default=200, help="single queries timed")
    parser.add_argument("--model", default="saved_models/flickr8k/gemini", help="a trained bundle (parts 2 and 3)")
    parser.add_argument("--data", default=None, help="Flickr8k folder (default: $GEMINI_TF_DATA/flickr8k)")
    parser.add_argument("--flickr-queries", type=int, default=5000, help="Flickr8k captions used as queries")
    parser.add_argument("--latency-gallery", type=int, default=10_000)
    parser.add_argument("--results", default="benchmarks/results/ann.json")
    args = parser.parse_args()

    results = {"settings": vars(args), "synthetic": synthetic(args)}
    if os.path.isdir(args.model):
        import gemini_tf
        from gemini_tf.data.paths import data_dir

        bundle = gemini_tf.load(args.model)
        texts = ["a dog runs through the grass", "two children play on the beach", "a man rides a bike"]
        try:
            images, texts, owners = flickr8k_captions(data_dir("flickr8k", args.data))
        except FileNotFoundError as error:
            print(f"skipping Flickr8k, timing three fixed captions: {error}")
        else:
            take = np.random.default_rng(0).permutation(len(texts))[: args.flickr_queries]
            results["flickr8k"] = flickr8k(bundle, images, [texts[i] for i in take], owners[take])
            print("flickr8k", json.dumps(results["flickr8k"], indent=2), flush=True)
        queries = [texts[i % len(texts)] for i in range(args.latency_queries)]
        results["latency_split"] = latency_split(bundle, args.latency_gallery, queries)
        print("latency_split", json.dumps(results["latency_split"], indent=2))
    else:
        print(f"skipping the Flickr8k and latency parts: no bundle at {args.model}")
    merge_results(args.results, results)


if __name__ == "__main__":
    main()
