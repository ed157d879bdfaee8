"""Points in R^d: parse a finite ``(n, d)`` array, exact pairwise squared distances, the ratio.

Coordinates are recomputed by the scorer; nothing the candidate reports about itself is used.

Pinned formula for the distance ratio: for every pair ``i < j``,
``d2_ij = sum_k (p_ik - p_jk)**2``; the score is ``ratio_squared = max(d2) / min(d2)``, the
square of ``max(pdist) / min(pdist)`` as in the AlphaEvolve notebook
(google-deepmind/alphaevolve_results@4226acb, B.8), without the square root.

Every step is exact. Each finite double is ``m * 2**e`` with an integer ``m``; all coordinates
are rescaled by the same power of two, ``2**-e_min``, into Python integers (a rescaling by a
power of two is exact and leaves the ratio unchanged), the squared distances are computed in
those integers, and the ratio is the one rounding of the exact rational ``max(d2) / min(d2)``
to the nearest double. So no coordinate is too small (squares that would underflow to
subnormals in float64) or too large (squares that would overflow) to be scored correctly: a
configuration scores the same at any scale and under any exact rotation. The only validity
checks are the shape, finite coordinates, ``min(d2) > 0`` (no two points coincide) and a
ratio that a double can hold. No tolerance is involved.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from evolve.scoring import Rejected
from evolve.verify.reals import FloatArray, IndexArray, RowWording, parse_rows

NEAR = Fraction(1, 10**6)  # relative slack for counting pairs at (nearly) the min or max distance


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


def integer_coordinates(pts: FloatArray) -> list[list[int]]:
    """The finite coordinates scaled by one common power of two into exact Python integers."""
    fractions = [[v.as_integer_ratio() for v in row] for row in pts.tolist()]
    # Every denominator is a power of two, so their maximum is a multiple of each of them.
    scale = max((den for row in fractions for _, den in row), default=1)
    return [[num * (scale // den) for num, den in row] for row in fractions]


def squared_distances(pts: FloatArray) -> tuple[IndexArray, IndexArray, list[int]]:
    """``(i, j, d2)`` for every pair ``i < j``; ``d2`` exact, in units of a common power of two."""
    i, j = np.triu_indices(len(pts), 1)
    coords = integer_coordinates(pts)
    d2 = [
        sum((a - b) * (a - b) for a, b in zip(coords[p], coords[q], strict=True))
        for p, q in zip(i.tolist(), j.tolist(), strict=True)
    ]
    return i, j, d2


def score_distance_ratio(
    output: object, n: int, dim: int, best_known: float
) -> tuple[dict[str, float], str]:
    """Validate ``n`` points in R^dim and return (metrics, feedback) for ``max(d2) / min(d2)``.

    Raises:
        Rejected: malformed or non-finite points, two coinciding points, or a ratio too large
            for a double.
    """
    pts = parse_points(output, n, dim)
    i, j, d2 = squared_distances(pts)
    k = min(range(len(d2)), key=d2.__getitem__)
    dmin2, dmax2 = d2[k], max(d2)
    if dmin2 == 0:
        raise Rejected(
            f"points {i[k]} and {j[k]} coincide (distance 0); all {n} points must be distinct"
        )
    exact = Fraction(dmax2, dmin2)
    try:
        ratio = float(exact)  # int / int: the exact rational rounded once
    except OverflowError:
        raise Rejected(
            "the ratio max(d2) / min(d2) exceeds the largest double (1.8e308); "
            "bring the closest points apart"
        ) from None
    near_min = sum(1 for v in d2 if v <= dmin2 * (1 + NEAR))
    near_max = sum(1 for v in d2 if v >= dmax2 * (1 - NEAR))
    metrics = {
        "ratio_squared": ratio,
        "min_pairs": float(near_min),
        "max_pairs": float(near_max),
    }
    feedback = (
        f"(max distance / min distance)^2 = {ratio:.10f} (best known {best_known}); "
        f"{near_min} pair(s) within {float(NEAR):g} of the minimum distance (closest: points "
        f"{i[k]} and {j[k]}), {near_max} pair(s) within {float(NEAR):g} of the maximum"
    )
    return metrics, feedback
