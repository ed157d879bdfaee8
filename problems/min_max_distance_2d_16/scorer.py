"""Trusted scorer for ``min_max_distance_2d_16``: 16 points in the plane, minimize (dmax/dmin)^2.

The candidate returns 16 rows ``[x, y]``. Everything is recomputed here in IEEE double precision;
nothing the candidate reports about itself is used.

Pinned formula: for every pair ``i < j``, ``d2_ij = sum_k (p_ik - p_jk)**2`` (numpy, summed over
the coordinates in order); the score is ``ratio_squared = max(d2) / min(d2)``. This is the square
of ``max(pdist) / min(pdist)`` as in the AlphaEvolve notebook (google-deepmind/alphaevolve_results
@4226acb, B.8), without the square root; the two agree to ~1e-16 relative. The ratio is invariant
under translation, rotation and scaling, so no tolerance is involved: the only validity checks are
the shape, finiteness (of the coordinates and of every squared distance) and ``min(d2) > 0``
(no two points may coincide).

Best known: 12.8892661120 (AlphaEvolve, B.8); previous record 12.890 (David Cantrell, 2009).
"""

from __future__ import annotations

import numpy as np

from evolve.scoring import Rejected

N = 16
DIM = 2
BEST_KNOWN = 12.8892661120
NEAR = 1e-6  # relative slack for counting pairs at (nearly) the minimum or maximum distance


def parse_points(output: object, n: int, dim: int) -> np.ndarray:
    """The candidate's output as an ``(n, dim)`` float array, or :class:`Rejected` saying why not."""
    if not isinstance(output, list | tuple):
        raise Rejected(
            f"expected a list of {n} points with {dim} coordinates; got {type(output).__name__}"
        )
    if len(output) != n:
        raise Rejected(f"expected exactly {n} points, got {len(output)}")
    for i, row in enumerate(output):
        if not isinstance(row, list | tuple) or len(row) != dim:
            raise Rejected(f"point {i}: expected {dim} coordinates, got {row!r:.80}")
        for v in row:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise Rejected(f"point {i}: {v!r:.40} is not a real number")
    try:
        pts = np.array(output, dtype=np.float64)
    except (OverflowError, ValueError) as exc:
        raise Rejected(f"points are not representable as floats: {exc}") from None
    bad = np.flatnonzero(~np.isfinite(pts).all(axis=1))
    if bad.size:
        raise Rejected(f"point {bad[0]} has a non-finite coordinate: {pts[bad[0]].tolist()}")
    return pts


def squared_distances(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(i, j, d2)`` for every pair ``i < j``, with the pinned formula."""
    i, j = np.triu_indices(len(pts), 1)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported by the caller
        diff = pts[i] - pts[j]
        return i, j, np.sum(diff * diff, axis=1)


def score(output: object) -> tuple[dict[str, float], str]:
    """Validate the points and return (metrics, feedback)."""
    pts = parse_points(output, N, DIM)
    i, j, d2 = squared_distances(pts)
    if not np.isfinite(d2).all():
        raise Rejected(
            "coordinates are so large that squared distances overflow; the ratio is scale-invariant, so keep coordinates near 1"
        )
    k = int(np.argmin(d2))
    dmin2, dmax2 = float(d2[k]), float(d2.max())
    if dmin2 <= 0.0:
        raise Rejected(
            f"points {i[k]} and {j[k]} coincide (distance 0); all {N} points must be distinct"
        )
    ratio = dmax2 / dmin2
    near_min = int((d2 <= dmin2 * (1 + NEAR)).sum())
    near_max = int((d2 >= dmax2 * (1 - NEAR)).sum())
    metrics = {
        "ratio_squared": ratio,
        "min_pairs": float(near_min),
        "max_pairs": float(near_max),
    }
    feedback = (
        f"(max distance / min distance)^2 = {ratio:.10f} (best known {BEST_KNOWN}); "
        f"{near_min} pair(s) within {NEAR:g} of the minimum distance (closest: points {i[k]} and "
        f"{j[k]}), {near_max} pair(s) within {NEAR:g} of the maximum"
    )
    return metrics, feedback
