"""evolve.verify.points: finite (n, d) point arrays, pairwise squared distances, the distance ratio."""

from __future__ import annotations

import math
import sys
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evolve.scoring import Rejected
from evolve.verify.points import parse_points, score_distance_ratio, squared_distances

SQUARE = [[0, 0], [1, 0], [0, 1], [1, 1]]


def test_parse_points_default_wording_names_the_dimension():
    assert parse_points(SQUARE, 4, 2).shape == (4, 2)
    with pytest.raises(
        Rejected, match=r"^expected a list of 4 points with 3 coordinates; got int$"
    ):
        parse_points(7, 4, 3)
    with pytest.raises(Rejected, match=r"^point 0: expected 3 coordinates, got \[0, 0\]$"):
        parse_points(SQUARE, 4, 3)
    with pytest.raises(Rejected, match=r"^expected exactly 5 points, got 4$"):
        parse_points(SQUARE, 5, 2)


def test_parse_points_custom_wording():
    with pytest.raises(Rejected, match=r"^expected a list of 4 points \[x, y\]; got str$"):
        parse_points("pts", 4, 2, listing="4 points [x, y]", row="[x, y]")
    with pytest.raises(Rejected, match=r"^point 2: expected \[x, y\], got \[0\]$"):
        parse_points([[0, 0], [1, 1], [0]], 3, 2, listing="3 points [x, y]", row="[x, y]")


def test_parse_points_rejects_non_finite_coordinates():
    with pytest.raises(Rejected, match=r"^point 3 has a non-finite coordinate: \[1.0, nan\]$"):
        parse_points([[0, 0], [1, 0], [0, 1], [1, math.nan]], 4, 2)


def test_squared_distances_cover_every_pair_in_order():
    i, j, d2 = squared_distances(np.array(SQUARE, dtype=np.float64))
    pairs = list(zip(i.tolist(), j.tolist(), strict=True))
    assert pairs == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert d2 == [1, 1, 2, 2, 1, 1]


def test_squared_distances_are_exact_integers_at_any_scale():
    # Units of a common power of two: 2**-1074 here, so nothing underflows or overflows.
    tiny = np.array([[0.0, 0.0], [5e-324, 0.0], [0.0, 1e300]])
    _, _, d2 = squared_distances(tiny)
    unit = Fraction(1, 2**1074)
    assert [v * unit**2 for v in d2] == [
        Fraction(5e-324) ** 2,
        Fraction(1e300) ** 2,
        Fraction(5e-324) ** 2 + Fraction(1e300) ** 2,
    ]


def _exact_ratio(points):
    """Reference: max/min squared distance over all pairs in exact rationals."""
    q = [[Fraction(v) for v in p] for p in points]
    d2 = [
        sum((a - b) ** 2 for a, b in zip(q[i], q[j], strict=True))
        for i in range(len(q))
        for j in range(i + 1, len(q))
    ]
    return None if min(d2) == 0 else max(d2) / min(d2)


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(finite, finite, finite), min_size=3, max_size=6, unique=True))
def test_ratio_is_the_exact_ratio_rounded_once(points):
    pts = [list(p) for p in points]
    exact = _exact_ratio(pts)
    if exact is None:  # two points equal as reals (0.0 and -0.0)
        with pytest.raises(Rejected, match="coincide"):
            score_distance_ratio(pts, len(pts), 3, 1.0)
    elif exact > Fraction(sys.float_info.max) * (1 + Fraction(1, 2**53)):
        with pytest.raises(Rejected, match="exceeds the largest double"):
            score_distance_ratio(pts, len(pts), 3, 1.0)
    elif exact > Fraction(sys.float_info.max):  # rounds down to the largest double, or overflows
        return
    else:
        assert score_distance_ratio(pts, len(pts), 3, 1.0)[0]["ratio_squared"] == float(exact)


@pytest.mark.parametrize(
    ("points", "dim", "ratio", "min_pairs", "max_pairs"),
    [
        ([[0, 0], [1, 0], [0.5, math.sqrt(3) / 2]], 2, 1.0, 3, 3),
        (SQUARE, 2, 2.0, 4, 2),
        ([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], 3, 3.0, 12, 4),
    ],
)
def test_ratio_of_simple_shapes(points, dim, ratio, min_pairs, max_pairs):
    metrics, feedback = score_distance_ratio(points, len(points), dim, best_known=0.5)
    assert metrics["ratio_squared"] == pytest.approx(ratio, rel=1e-15)
    assert metrics["min_pairs"] == min_pairs
    assert metrics["max_pairs"] == max_pairs
    assert "(best known 0.5)" in feedback


def test_ratio_is_scale_and_translation_invariant():
    moved = (np.array(SQUARE) * 1e-3 + 42.0).tolist()
    assert score_distance_ratio(moved, 4, 2, 1.0)[0]["ratio_squared"] == pytest.approx(2.0)


def test_rejects_coinciding_points_and_an_unrepresentable_ratio():
    with pytest.raises(Rejected) as err:
        score_distance_ratio([[0, 0], [1, 0], [1, 0]], 3, 2, 1.0)
    assert str(err.value) == "points 1 and 2 coincide (distance 0); all 3 points must be distinct"
    with pytest.raises(Rejected, match="exceeds the largest double"):
        score_distance_ratio([[0, 0], [1e-200, 0], [0, 1e200]], 3, 2, 1.0)


@pytest.mark.parametrize("scale", [1e200, 1e-200, 2.0**-1060])
def test_ratio_is_exact_where_float_squares_overflow_or_underflow(scale):
    pts = (np.array(SQUARE, dtype=np.float64) * scale).tolist()
    assert score_distance_ratio(pts, 4, 2, 1.0)[0]["ratio_squared"] == 2.0
