"""Scores the three constants by their distance to (1, 2, 3)."""

import math

from evolve.scoring import Rejected


def score(output):
    params = output.get("params") if isinstance(output, dict) else None
    if not isinstance(params, list) or len(params) != 3 or not all(isinstance(v, int | float) and math.isfinite(v) for v in params):
        raise Rejected("params must be a list of 3 finite numbers")
    return {"closeness": -sum((float(v) - t) ** 2 for v, t in zip(params, (1.0, 2.0, 3.0), strict=True))}
