"""Shared by the benchmark scripts: write results into benchmarks/results/*.json, time a call."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable


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


def best_of(call: Callable[[], object], repeats: int = 3) -> float:
    """The fastest of `repeats` wall-clock timings of `call()`, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)
