"""How the benchmarks report: the machine, the figures, and whether the issue's target was met."""

from __future__ import annotations

import math
import os
import platform
import statistics
from collections.abc import Sequence

import cryptography
import django


def machine() -> str:
    """One line: CPU count and model, Python, Django, cryptography."""
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores{f' ({model})' if model else ''}, {platform.system()}; "
        f"Python {platform.python_version()}, Django {django.get_version()}, cryptography {cryptography.__version__}"
    )


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` 0.5 for p50, 0.99 for p99) of unsorted ``samples``."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def verdict(label: str, measured: float, target: float, *, at_most: bool) -> bool:
    """Print ``label: measured (target ≤/≥ target): met|MISSED`` and return whether it was met."""
    met = measured <= target if at_most else measured >= target
    sign = "≤" if at_most else "≥"
    print(f"{label}: {measured:.2f}× (target {sign} {target:.2f}×): {'met' if met else 'MISSED'}")
    return met
