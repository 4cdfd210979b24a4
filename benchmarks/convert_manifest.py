"""TFRecord conversion at scale: rows/s and peak memory for a 100,000-row manifest, both engines.

Writes a manifest of N rows over 1,000 distinct 64x64 JPEG files (rows reuse
files, as captioned datasets do), converts it with the single-process
`convert_manifest` and with the Beam pipeline (`convert_manifest_beam`,
DirectRunner, 2 worker processes by default), checks that both wrote the same
example set and report counts, and streams every example back with
`read_tfrecords`. Peak RSS of this process is read from the kernel
(ru_maxrss): it stays flat because rows are streamed (Beam workers are other
processes and not included).

    python benchmarks/convert_manifest.py --rows 100000
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import resource
import shutil
import tempfile
import time

import numpy as np
from PIL import Image

from gemini_tf.beam.convert import convert_manifest_beam
from gemini_tf.beam.options import DIRECT_WORKERS
from gemini_tf.data.tfrecords import convert_manifest, read_tfrecords


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def example_digest(folder: str) -> tuple[int, str]:
    """(count, order-free digest) of the examples in a folder of shards."""
    digests = sorted(
        hashlib.sha1(e["id"] + e["image"] + e["text"]).hexdigest() for e in read_tfrecords(folder).as_numpy_iterator()
    )
    return len(digests), hashlib.sha1("".join(digests).encode()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--workers", type=int, default=DIRECT_WORKERS, help="Beam DirectRunner worker processes")
    parser.add_argument("--results", default="benchmarks/results/convert_manifest.json")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="gemini_tf_convert_")
    try:
        rng = np.random.default_rng(0)
        for i in range(1000):
            buffer = io.BytesIO()
            Image.fromarray((rng.random((64, 64, 3)) * 255).astype("uint8")).save(buffer, "JPEG")
            with open(os.path.join(work, f"{i}.jpg"), "wb") as f:
                f.write(buffer.getvalue())
        manifest = os.path.join(work, "manifest.csv")
        with open(manifest, "w") as f:
            f.write("image,text,label\n")
            for row in range(args.rows):
                f.write(f"{row % 1000}.jpg,caption number {row} of a synthetic photo,{row % 2}\n")
        baseline = peak_rss_mb()
        single_dir, beam_dir = os.path.join(work, "single"), os.path.join(work, "beam")
        start = time.time()
        _, report = convert_manifest(manifest, single_dir, args.shards)
        convert_seconds = time.time() - start
        after_convert = peak_rss_mb()
        start = time.time()
        count = sum(1 for _ in read_tfrecords(single_dir))
        read_seconds = time.time() - start
        after_read = peak_rss_mb()
        start = time.time()
        _, beam_report = convert_manifest_beam(
            manifest, beam_dir, args.shards, beam_options={"direct_num_workers": str(args.workers)}
        )
        beam_seconds = time.time() - start
        same_examples = example_digest(single_dir) == example_digest(beam_dir)
        same_counts = all(
            report.to_dict()[key] == beam_report.to_dict()[key] for key in ("rows_read", "used", "skipped")
        )
        results = {
            "rows": args.rows,
            "shards": args.shards,
            "used": report.used,
            "convert_rows_per_second": args.rows / convert_seconds,
            "read_examples_per_second": count / read_seconds,
            "peak_rss_mb_before": baseline,
            "peak_rss_mb_after_convert": after_convert,
            "peak_rss_mb_after_read": after_read,
            "peak_rss_mb_after_beam": peak_rss_mb(),
            "shard_bytes": sum(os.path.getsize(os.path.join(single_dir, f)) for f in os.listdir(single_dir)),
            "beam_direct_workers": args.workers,
            "beam_convert_rows_per_second": args.rows / beam_seconds,
            "beam_same_examples_as_single": same_examples,
            "beam_same_report_counts": same_counts,
        }
    finally:
        shutil.rmtree(work)
    print(json.dumps(results, indent=2))
    os.makedirs(os.path.dirname(args.results), exist_ok=True)
    with open(args.results, "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
