"""Trusted scorer: recomputes the energy from the candidate's returned points."""

import math

from evolve.scoring import Rejected

N = 12


def score(output):
    if not isinstance(output, list) or len(output) != N:
        size = len(output) if isinstance(output, list) else "-"
        raise Rejected(f"expected a list of {N} points [x, y], got {type(output).__name__} of length {size}")
    pts = []
    for k, row in enumerate(output):
        ok = isinstance(row, list) and len(row) == 2 and all(isinstance(v, int | float) and math.isfinite(v) for v in row)
        if not ok:
            raise Rejected(f"point {k} must be two finite numbers, got {row!r}")
        x, y = float(row[0]), float(row[1])
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise Rejected(f"point {k} ({x}, {y}) is outside the unit square")
        pts.append((x, y))
    dists = [math.dist(pts[i], pts[j]) for i in range(N) for j in range(i + 1, N)]
    if min(dists) == 0.0:
        raise Rejected("two points coincide")
    return {"energy": sum(1.0 / d for d in dists), "min_distance": min(dists)}
