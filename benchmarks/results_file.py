"""Shared by the benchmark scripts: write results into benchmarks/results/*.json."""

from __future__ import annotations

import json
import os


def merge_results(path: str, results: dict) -> None:
    """Merges `results` into the JSON file at `path`; entries of other runs (models measured
    separately, train times of a re-evaluated model) are kept."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    previous = {}
    if os.path.isfile(path):
        with open(path) as f:
            previous = json.load(f)
    with open(path, "w") as f:
        json.dump({**previous, **results}, f, indent=2)
