"""Percentiles, in milliseconds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def summary(seconds: Sequence[float]) -> dict[str, float]:
    """count, mean, p50, p90, p99, max of durations given in seconds, in ms."""
    if not seconds:
        return {"count": 0}
    a = np.asarray(seconds, dtype=float) * 1000.0
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {
        "count": len(a),
        "mean_ms": round(float(a.mean()), 2),
        "p50_ms": round(float(p50), 2),
        "p90_ms": round(float(p90), 2),
        "p99_ms": round(float(p99), 2),
        "max_ms": round(float(a.max()), 2),
    }
