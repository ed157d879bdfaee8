"""Scores four constants by a continuous trap function: the slope leads away from the optimum."""

import math

from evolve.scoring import Rejected


def trap(c):
    if c < 1.5:
        return 1.5 - c
    if c < 2.0:
        return 6.0 * (c - 1.5)
    return 3.0


def score(output):
    params = output.get("params") if isinstance(output, dict) else None
    if not isinstance(params, list) or len(params) != 4 or not all(
        isinstance(v, int | float) and math.isfinite(v) and v >= 0 for v in params
    ):
        raise Rejected("params must be a list of 4 finite numbers >= 0")
    values = [float(v) for v in params]
    return {"trap": sum(trap(v) for v in values) / 4, "mean_c": sum(values) / 4}
