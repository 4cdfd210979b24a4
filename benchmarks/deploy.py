"""Size, latency (p50/p99, batch 1 and 32) and accuracy of every deployed variant.

    python benchmarks/deploy.py --model saved_models/quickstart

Exports the bundle to a temporary TF Serving folder, converts the four TFLite
quantizations in both flavours, and measures everything on the Shapes test split
(one positive, one random and every one-difference negative per scene).
"""

import argparse
import io
import json
import tempfile

from PIL import Image

import gemini_tf
from gemini_tf.data import shapes
from gemini_tf.export.compare import compare_variants
from gemini_tf.export.saved_model import export_saved_model
from gemini_tf.export.tflite import QUANTIZATIONS, export_tflite, representative_data


def png(image) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="saved_models/quickstart")
    parser.add_argument("--scenes", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--out", default="benchmarks/results/deploy.json")
    parser.add_argument(
        "--quantize", nargs="+", choices=QUANTIZATIONS, default=list(QUANTIZATIONS), help="TFLite variants to measure"
    )
    args = parser.parse_args()

    bundle = gemini_tf.load(args.model)
    pairs = shapes.make_pairs(args.scenes, "test", negatives="all")
    with tempfile.TemporaryDirectory() as base:
        saved_model = export_saved_model(bundle, "bench", base)
        tflite_dir = f"{base}/bench/tflite"
        calibration = representative_data(bundle) if "int8" in args.quantize else None
        export_tflite(saved_model, tflite_dir, tuple(args.quantize), representative_data=calibration)
        rows = compare_variants(bundle, saved_model, tflite_dir, pairs, [png(i) for i in pairs.images], args.repeats)
    columns = ["size_mb", "p50_ms_b1", "p99_ms_b1", "p50_ms_b32", "p99_ms_b32", "accuracy"]
    print(f"{len(pairs)} test pairs from {args.scenes} scenes")
    print("| variant | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name, row in rows.items():
        cells = [(f"{100 * row[c]:.1f}%" if c == "accuracy" else f"{row[c]:.2f}") if c in row else "-" for c in columns]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
