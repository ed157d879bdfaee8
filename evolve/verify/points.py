"""Points in R^d: parse a finite ``(n, d)`` array, pairwise squared distances, the distance ratio.

Coordinates are recomputed in IEEE double precision; nothing the candidate reports about itself
is used.

Pinned formula for the distance ratio: for every pair ``i < j``,
``d2_ij = sum_k (p_ik - p_jk)**2`` (numpy, summed over the coordinates in order); the score is
``ratio_squared = max(d2) / min(d2)``. This is the square of ``max(pdist) / min(pdist)`` as in
the AlphaEvolve notebook (google-deepmind/alphaevolve_results@4226acb, B.8), without the square
root; the two agree to ~1e-16 relative. The ratio is invariant under translation, rotation and
scaling, so no tolerance is involved: the only validity checks are the shape, finiteness (of the
coordinates and of every squared distance) and ``min(d2) > 0`` (no two points may coincide).
"""

from __future__ import annotations

import numpy as np

from evolve.scoring import Rejected
from evolve.verify.reals import FloatArray, IndexArray, RowWording, parse_rows

NEAR = 1e-6  # relative slack for counting pairs at (nearly) the minimum or maximum distance


def parse_points(
    output: object, n: int, dim: int, *, listing: str | None = None, row: str | None = None
) -> FloatArray:
    """The candidate's output as an ``(n, dim)`` float array, or :class:`Rejected` saying why not.

    Args:
        output: the candidate's return value after the JSON round trip.
        n: the required number of points.
        dim: the required number of coordinates per point.
        listing: what the output should be, in the message ``"expected a list of {listing}"``;
            by default ``"{n} points with {dim} coordinates"``.
        row: what one point should be, in ``"point 3: expected {row}"``; by default
            ``"{dim} coordinates"``.
    """
    wording = RowWording(
        noun="point",
        listing=listing if listing is not None else f"{n} points with {dim} coordinates",
        row=row if row is not None else f"{dim} coordinates",
        entry="coordinate",
    )
    return parse_rows(output, n, dim, wording)


def squared_distances(pts: FloatArray) -> tuple[IndexArray, IndexArray, FloatArray]:
    """``(i, j, d2)`` for every pair ``i < j``, with the pinned formula (may overflow to inf)."""
    i, j = np.triu_indices(len(pts), 1)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported by the caller
        diff = pts[i] - pts[j]
        return i, j, np.sum(diff * diff, axis=1)


def score_distance_ratio(
    output: object, n: int, dim: int, best_known: float
) -> tuple[dict[str, float], str]:
    """Validate ``n`` points in R^dim and return (metrics, feedback) for ``max(d2) / min(d2)``.

    Raises:
        Rejected: malformed or non-finite points, squared distances that overflow, or two
            coinciding points.
    """
    pts = parse_points(output, n, dim)
    i, j, d2 = squared_distances(pts)
    if not np.isfinite(d2).all():
        raise Rejected(
            "coordinates are so large that squared distances overflow; the ratio is scale-invariant, so keep coordinates near 1"
        )
    k = int(np.argmin(d2))
    dmin2, dmax2 = float(d2[k]), float(d2.max())
    if dmin2 <= 0.0:
        raise Rejected(
            f"points {i[k]} and {j[k]} coincide (distance 0); all {n} points must be distinct"
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
        f"(max distance / min distance)^2 = {ratio:.10f} (best known {best_known}); "
        f"{near_min} pair(s) within {NEAR:g} of the minimum distance (closest: points {i[k]} and "
        f"{j[k]}), {near_max} pair(s) within {NEAR:g} of the maximum"
    )
    return metrics, feedback
