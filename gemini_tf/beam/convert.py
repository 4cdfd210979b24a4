"""Manifest -> sharded TFRecords as an Apache Beam pipeline (`gemini-tf data convert --engine beam`).

The same rules as the single-process converter, split where the work is:
the launcher streams the manifest through `iter_manifest` (row checks: paths,
text, labels, files present; cheap), the workers read each image, validate the
bytes and serialize the `tf.train.Example` with `serialized_example` (the
expensive part), and `WriteToTFRecord` writes `data-XXXXX-of-NNNNN.tfrecord`.
Rows a worker rejects come back to the launcher, which adds them to the same
`DataReport` (in row order) and writes `report.json`; in strict mode the first
of them fails the conversion and the partial shards are removed.
The launcher holds the parsed rows (about 200 bytes each) in memory.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from gemini_tf.beam.options import pipeline_options
from gemini_tf.data.manifest import iter_manifest
from gemini_tf.data.records import Record
from gemini_tf.data.report import DataError, DataReport
from gemini_tf.data.tfrecords import prepare_output_dir, serialized_example, write_report

SKIPPED = "skipped"


class EncodeRecord(beam.DoFn):
    """Record -> serialized Example, or a tagged (where, reason, image) for a row that cannot be used."""

    def process(self, record: Record):
        try:
            with FileSystems.open(record.image) as f:
                data = f.read()
        except OSError:
            yield beam.pvalue.TaggedOutput(SKIPPED, (record.where, "missing_image", record.image))
            return
        example, problem = serialized_example(record, data)
        if problem:
            yield beam.pvalue.TaggedOutput(SKIPPED, (record.where, problem, record.image))
        else:
            yield example


def _row_order(skipped: tuple[str, str, str]) -> tuple[str, int]:
    """Sort key of a `file:line` location: by file, then line number."""
    path, _, line = skipped[0].rpartition(":")
    return path, int(line) if line.isdigit() else 0


def convert_manifest_beam(
    manifest: str,
    out_dir: str,
    shards: int = 8,
    strict: bool = False,
    allow_outside_root: bool = False,
    runner: str = "DirectRunner",
    beam_options: dict[str, str] | None = None,
) -> tuple[list[str], DataReport]:
    """Manifest -> `out_dir/data-XXXXX-of-NNNNN.tfrecord` + `report.json`, on a Beam runner.

    Args:
        manifest, out_dir, shards, strict, allow_outside_root: as
            `gemini_tf.data.tfrecords.convert_manifest`.
        runner: a Beam runner name (`gemini_tf.beam.options.RUNNERS`).
        beam_options: extra pipeline options, e.g. {"direct_num_workers": "4"}.
    """
    prepare_output_dir(out_dir, shards)
    report = DataReport(manifest, strict=strict)
    records = list(iter_manifest(manifest, report, allow_outside_root, check_images=False))
    scratch = tempfile.mkdtemp(prefix=".beam-", dir=out_dir)
    try:
        with beam.Pipeline(options=pipeline_options(runner, beam_options)) as pipeline:
            encoded = (
                pipeline
                | "Rows" >> beam.Create(records, reshuffle=True)
                | "Encode" >> beam.ParDo(EncodeRecord()).with_outputs(SKIPPED, main="examples")
            )
            _ = encoded.examples | "Write" >> beam.io.WriteToTFRecord(
                os.path.join(out_dir, "data"),
                file_name_suffix=".tfrecord",
                num_shards=shards,
                shard_name_template="-SSSSS-of-NNNNN",
            )
            _ = (
                encoded[SKIPPED]
                | "SkippedJson" >> beam.Map(json.dumps)
                | "WriteSkipped" >> beam.io.WriteToText(os.path.join(scratch, "skipped"))
            )
        skipped = []
        for path in glob.glob(os.path.join(scratch, "skipped*")):
            with open(path) as f:
                skipped += [tuple(json.loads(line)) for line in f if line.strip()]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    paths = sorted(glob.glob(os.path.join(out_dir, "data-*-of-*.tfrecord")))
    try:
        for where, reason, image in sorted(skipped, key=_row_order):
            report.used -= 1
            report.skip(where, reason, image)
    except DataError:
        for path in paths:
            os.remove(path)
        raise
    write_report(out_dir, report)
    return paths, report
