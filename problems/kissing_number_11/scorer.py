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

The pair check is vectorised and exact, with no float screen: coordinates below 2**50 fit int64,
so do their differences (< 2**51); each difference is split into 26-bit limbs, ``d = h * 2**26 +
l``, and ``|x - y|^2 - M`` is assembled from the limb sums ``sum h^2``, ``sum 2hl``, ``sum l^2``
(each below 2**56) with carries, in int64, so its sign is exact. Pairs are checked in blocks of
rows, in order, and the first block holding a pair with ``|x - y|^2 < M`` rejects the input
(naming its first such pair): the scorer's work is at most ``n^2 / 2`` pair checks of 11
coordinates, about a second for the largest accepted input, whatever the values. Equal norms are
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
LIMB = 26  # bits per limb of a coordinate difference in the exact pair check
MASK = (1 << LIMB) - 1
BLOCK_PAIRS = 1 << 16  # pairs per block of the exact pair check (bounds its memory)
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


def _limbs(value: int) -> tuple[int, int, int]:
    """``value = top * 2**52 + mid * 2**26 + low`` with ``0 <= mid, low < 2**26``."""
    return value >> (2 * LIMB), (value >> LIMB) & MASK, value & MASK


def compare_block(
    coords: np.ndarray, rows: range, big: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``sign(|x_i - x_j|^2 - big)`` for ``i`` in ``rows`` and every ``j > rows.start``.

    Returns ``(below, equal)``, boolean ``(len(rows), n - rows.start - 1)`` arrays; entries with
    ``j <= i`` are meaningless and must be masked by the caller.
    """
    diff = coords[rows.start : rows.stop, None, :] - coords[None, rows.start + 1 :, :]
    hi, lo = diff >> LIMB, diff & MASK
    top, mid, low = _limbs(big)
    t0 = np.einsum("abk,abk->ab", lo, lo) - low
    t1 = 2 * np.einsum("abk,abk->ab", hi, lo) - mid + (t0 >> LIMB)
    t2 = np.einsum("abk,abk->ab", hi, hi) - top + (t1 >> LIMB)
    below = t2 < 0
    equal = (t2 == 0) & ((t1 & MASK) == 0) & ((t0 & MASK) == 0)
    return below, equal


def check_pairs(points: list[tuple[int, ...]], big: int, where: str = "") -> int:
    """The number of pairs at exactly ``|x - y|^2 == big``.

    Raises:
        Rejected: at the first block of rows holding a pair closer than that, naming its first
            such pair (``where`` is appended to the message, e.g. which point attains ``big``).
    """
    coords = np.array(points, dtype=np.int64)
    n = len(points)
    critical = 0
    start = 0
    while start < n - 1:
        rows = range(start, min(n - 1, start + max(1, BLOCK_PAIRS // (n - start))))
        below, equal = compare_block(coords, rows, big)
        upper = np.arange(rows.start + 1, n)[None, :] > np.array(rows)[:, None]
        bad = np.argwhere(below & upper)
        if bad.size:
            i, j = rows.start + int(bad[0, 0]), rows.start + 1 + int(bad[0, 1])
            exact = squared_distance(points[i], points[j])
            raise Rejected(
                f"points {i} and {j} are too close: |x_{i} - x_{j}|^2 = {exact} < max |x|^2 = {big}"
                f"{where}; every pair needs |x - y|^2 >= max |x|^2"
            )
        critical += int((equal & upper).sum())
        start = rows.stop
    return critical


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
    critical = check_pairs(points, big, f" (attained by point {norms.index(big)})")
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
