"""evolve.verify.points: finite (n, d) point arrays, pairwise squared distances, the distance ratio."""

from __future__ import annotations

import math

import numpy as np
import pytest

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
    assert d2.tolist() == [1.0, 1.0, 2.0, 2.0, 1.0, 1.0]


def test_squared_distances_overflow_to_inf_without_warning():
    with np.errstate(all="raise"):
        _, _, d2 = squared_distances(np.array([[0.0, 0.0], [1e200, 0.0]]))
    assert d2.tolist() == [math.inf]


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


def test_rejects_coinciding_points_and_overflow():
    with pytest.raises(Rejected) as err:
        score_distance_ratio([[0, 0], [1, 0], [1, 0]], 3, 2, 1.0)
    assert str(err.value) == "points 1 and 2 coincide (distance 0); all 3 points must be distinct"
    with pytest.raises(Rejected, match="squared distances overflow"):
        score_distance_ratio([[0, 0], [1e200, 0], [0, 1e200]], 3, 2, 1.0)
