"""Beam pipeline options from the CLI: a runner name and KEY=VALUE pairs.

DirectRunner runs here with `direct_num_workers` worker processes
(multi-processing mode, so the 2 cores both work); Flink, Spark and Dataflow
take their own options (`--beam-option project=… region=… temp_location=…`),
passed through unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

ENGINES = ("single", "beam")  # one process (the default), or an Apache Beam pipeline
RUNNERS = ("DirectRunner", "FlinkRunner", "SparkRunner", "DataflowRunner")
DIRECT_WORKERS = 2


def parse_beam_options(pairs: Sequence[str]) -> dict[str, str]:
    """["direct_num_workers=4", ...] -> {"direct_num_workers": "4", ...}; a clear error for a bad pair."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--beam-option takes KEY=VALUE, got {pair!r}.")
        options[key.strip().lstrip("-")] = value
    return options


def pipeline_options(runner: str = "DirectRunner", options: dict[str, str] | None = None):
    """`PipelineOptions` for `runner`; DirectRunner gets 2 worker processes unless told otherwise."""
    from apache_beam.options.pipeline_options import PipelineOptions

    if runner not in RUNNERS:
        raise ValueError(f"Unknown Beam runner {runner!r}; choose one of {list(RUNNERS)}.")
    flags = {"runner": runner}
    if runner == "DirectRunner":
        flags |= {"direct_num_workers": str(DIRECT_WORKERS), "direct_running_mode": "multi_processing"}
    flags |= options or {}
    return PipelineOptions([f"--{key}={value}" for key, value in flags.items()])
