"""Trusted scorer for ``kissing_number_11``: a kissing configuration in 11 dimensions, its size.

Certificate (AlphaEvolve's lemma, arXiv 2506.13131, B.11): if C is a finite set of integer points
in Z^11 with 0 not in C and

    min_{x != y in C} |x - y|^2  >=  max_{x in C} |x|^2,

then the unit spheres centred at 2x/|x| (x in C) all touch the unit sphere at the origin and have
disjoint interiors, so the kissing number in dimension 11 is at least |C|. The score is |C|.

Everything is checked in exact integer arithmetic (coordinates of the published construction
reach 8.7e12, so squared norms reach 1e26 and overflow int64). Pinned checks:

- the output is a list of 1..MAX_POINTS points, each a list of 11 integers (JSON ints, or floats
  with an integral value) with ``|coordinate| <= 2**50``;
- no point is 0 and no two points are equal;
- ``M = max |x|^2`` in Python ints; every pair must satisfy ``|x - y|^2 >= M`` exactly.

The pair check is vectorised and still exact: squared distances are first computed in float64
from the Gram matrix (coordinates below 2**50 are exact floats, and the rounding error of
``|x|^2 + |y|^2 - 2<x, y>`` is below ~1e-14 * M), and every pair within a relative 1e-9 of M, or
below it, is then recomputed with Python ints; only those exact values decide. Equal norms are
NOT required (the AlphaEvolve construction, 593 points, has 593 distinct norms; GigaEvo's
single-shell validator wrongly rejects it).

Best known: 593 (AlphaEvolve, B.11). Previous record: 592 (Ganzhinov 2022).
"""

from __future__ import annotations

import numpy as np

from evolve.scoring import Rejected

DIM = 11
MAX_POINTS = 2000
MAX_COORD = 2**50
SCREEN = 1e-9  # relative band around M that the exact check recomputes
BEST_KNOWN = 593


def parse_points(output: object) -> list[tuple[int, ...]]:
    """The candidate's points as tuples of Python ints, or :class:`Rejected` saying why not."""
    if not isinstance(output, list | tuple):
        raise Rejected(
            f"expected a list of points with {DIM} integer coordinates; got {type(output).__name__}"
        )
    if not 1 <= len(output) <= MAX_POINTS:
        raise Rejected(f"expected between 1 and {MAX_POINTS} points, got {len(output)}")
    points = []
    for i, row in enumerate(output):
        if not isinstance(row, list | tuple) or len(row) != DIM:
            raise Rejected(f"point {i}: expected {DIM} integer coordinates, got {row!r:.100}")
        coords = []
        for v in row:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise Rejected(f"point {i}: {v!r:.40} is not an integer")
            if isinstance(v, float):
                if not (v == v and abs(v) <= MAX_COORD and v == int(v)):
                    raise Rejected(
                        f"point {i}: {v!r} is not an integer (coordinates must be exact integers)"
                    )
                v = int(v)
            if abs(v) > MAX_COORD:
                raise Rejected(f"point {i}: |{v}| exceeds 2**50; scale the configuration down")
            coords.append(v)
        points.append(tuple(coords))
    return points


def squared_norm(x: tuple[int, ...]) -> int:
    return sum(v * v for v in x)


def squared_distance(x: tuple[int, ...], y: tuple[int, ...]) -> int:
    return sum((a - b) * (a - b) for a, b in zip(x, y, strict=True))


def score(output: object) -> tuple[dict[str, float], str]:
    """Verify the certificate exactly and return (metrics, feedback)."""
    points = parse_points(output)
    norms = [squared_norm(x) for x in points]
    zero = [i for i, m in enumerate(norms) if m == 0]
    if zero:
        raise Rejected(f"point {zero[0]} is the origin; 0 must not be in the set")
    seen: dict[tuple[int, ...], int] = {}
    for i, x in enumerate(points):
        if x in seen:
            raise Rejected(f"points {seen[x]} and {i} are equal; the points must be distinct")
        seen[x] = i
    big = max(norms)
    n = len(points)
    critical = 0
    if n > 1:
        xf = np.array(points, dtype=np.float64)
        nf = np.einsum("ij,ij->i", xf, xf)
        d2 = nf[:, None] + nf[None, :] - 2.0 * (xf @ xf.T)
        iu, ju = np.triu_indices(n, 1)
        close = np.flatnonzero(d2[iu, ju] <= float(big) * (1 + SCREEN))
        worst: tuple[int, int, int] | None = None
        for k in close.tolist():
            i, j = int(iu[k]), int(ju[k])
            exact = squared_distance(points[i], points[j])
            if exact == big:
                critical += 1
            if exact < big and (worst is None or exact < worst[0]):
                worst = (exact, i, j)
        if worst is not None:
            exact, i, j = worst
            raise Rejected(
                f"points {i} and {j} are too close: |x_{i} - x_{j}|^2 = {exact} < max |x|^2 = {big} "
                f"(attained by point {norms.index(big)}); every pair needs |x - y|^2 >= max |x|^2"
            )
    distinct_norms = len(set(norms))
    metrics = {
        "size": float(n),
        "distinct_norms": float(distinct_norms),
        "critical_pairs": float(critical),
    }
    feedback = (
        f"valid kissing certificate: {n} points in Z^11 (best known {BEST_KNOWN}); "
        f"{distinct_norms} distinct squared norm(s), max |x|^2 = {big}; {critical} pair(s) at "
        f"exactly the critical distance"
    )
    return metrics, feedback
