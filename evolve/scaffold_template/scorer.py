"""Trusted scorer: recomputes the score from the candidate's returned points."""

import math

from evolve.scoring import Rejected

N = 12


def score(output):
    if not isinstance(output, list) or len(output) != N:
        raise Rejected(f"expected a list of {N} points [x, y], got {type(output).__name__} of length {len(output) if isinstance(output, list) else '-'}")
    pts = []
    for k, row in enumerate(output):
        if not isinstance(row, list) or len(row) != 2 or not all(isinstance(v, int | float) and math.isfinite(v) for v in row):
            raise Rejected(f"point {k} must be two finite numbers, got {row!r}")
        x, y = float(row[0]), float(row[1])
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise Rejected(f"point {k} ({x}, {y}) is outside the unit square")
        pts.append((x, y))
    nn = [min(math.dist(p, q) for j, q in enumerate(pts) if j != i) for i, p in enumerate(pts)]
    return {"min_distance": min(nn), "mean_nn_distance": sum(nn) / N}
