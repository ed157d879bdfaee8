"""evolve.verify.circles: disjoint circles in the unit square, for any n, pinned formula and TOL."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evolve.scoring import Rejected
from evolve.verify.circles import (
    CONTACT,
    TOL,
    check_packing,
    parse_circles,
    score_packing,
    summarize_packing,
    violations,
)


def grid(k):
    """k x k equal circles of radius 1/(2k): every circle touches its neighbours or a wall."""
    r = 1 / (2 * k)
    return [[(2 * a + 1) * r, (2 * b + 1) * r, r] for a in range(k) for b in range(k)]


def test_tolerance_and_contact_slack_are_pinned():
    assert TOL == 1e-12
    assert CONTACT == 1e-6


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
def test_accepts_a_tight_grid_of_any_size(k):
    metrics, feedback = score_packing(grid(k), k * k, best_known=9.0)
    assert metrics["sum_radii"] == pytest.approx(k / 2, rel=1e-15)
    assert feedback.startswith(f"valid packing of {k * k} circles: ")
    assert "(best known 9.0)" in feedback


def test_parse_circles_checks_the_count_for_the_given_n():
    assert parse_circles(grid(2), 4).shape == (4, 3)
    with pytest.raises(Rejected, match=r"^expected exactly 5 circles, got 4$"):
        parse_circles(grid(2), 5)
    with pytest.raises(Rejected, match=r"^expected a list of 5 rows \[x, y, r\]; got str$"):
        parse_circles("circles", 5)
    with pytest.raises(Rejected, match=r"^circle 1: expected a row \[x, y, r\] of 3 numbers"):
        parse_circles([[0.5, 0.5, 0.1], [0.5, 0.5]], 2)


def test_tolerance_is_absolute_1e12_on_overlap_and_walls():
    two = np.array([[0.25, 0.25, 0.25], [0.75, 0.25, 0.25]])
    check_packing(two)
    grown = two.copy()
    grown[0, 2] += 4e-13
    check_packing(grown)
    grown[0, 2] += 2e-12
    with pytest.raises(Rejected, match="stick out of the unit square"):
        check_packing(grown)
    # Away from the walls only the pair can fail.
    pair = np.array([[0.3, 0.5, 0.1], [0.5 + 2e-12, 0.5, 0.1]])
    check_packing(pair)
    pair[1, 0] -= 3e-12
    with pytest.raises(Rejected, match=r"allowed overlap is 1e-12$"):
        check_packing(pair)
    check_packing(pair, tol=1e-9)


def test_zero_radius_is_allowed_but_must_stay_inside_and_outside_others():
    check_packing(np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]]))
    with pytest.raises(Rejected, match="worst is circle 1 "):
        check_packing(np.array([[0.5, 0.5, 0.0], [1.5, 0.5, 0.0]]))
    with pytest.raises(Rejected, match="worst is circles 0 and 1 "):
        check_packing(np.array([[0.5, 0.5, 0.2], [0.55, 0.5, 0.0]]))


def test_negative_radius_is_reported_before_anything_else():
    circles = np.array([[5.0, 5.0, 0.1], [0.5, 0.5, -1e-300]])
    with pytest.raises(Rejected) as err:
        check_packing(circles)
    assert str(err.value) == "circle 1 has negative radius -1e-300; radii must be >= 0"


def test_overlap_message_names_the_worst_pair_and_its_numbers():
    circles = np.array([[0.2, 0.2, 0.1], [0.4, 0.2, 0.1], [0.7, 0.7, 0.2], [0.7, 0.35, 0.2]])
    with pytest.raises(Rejected) as err:
        check_packing(circles)
    message = str(err.value)
    assert message.startswith("1 pair(s) of circles overlap; worst is circles 2 and 3 by 5.000e-02")
    assert "(distance 0.35" in message and "< r2+r3 = 0.4" in message


def test_distance_is_the_pinned_sqrt_of_summed_products_not_hypot():
    rng = np.random.default_rng(7)
    for _ in range(10_000):
        (x0, y0), (x1, y1) = rng.uniform(0, 1, (2, 2))
        dx, dy = x0 - x1, y0 - y1
        if np.sqrt(dx * dx + dy * dy) != np.hypot(dx, dy):
            break
    else:
        pytest.fail("no pair where hypot rounds differently")
    _, overlap, dist = violations(np.array([[x0, y0, 0.0], [x1, y1, 0.0]]))
    assert dist[0, 1] == np.sqrt(dx * dx + dy * dy) != np.hypot(dx, dy)
    assert overlap[0, 1] == -dist[0, 1]
    assert overlap[0, 0] == overlap[1, 1] == -np.inf


def test_summary_counts_contacts_and_the_room_to_grow():
    circles = np.array([[0.25, 0.25, 0.25], [0.75, 0.25, 0.25], [0.5, 0.75, 0.1]])
    overhang, overlap = check_packing(circles)
    metrics, feedback = summarize_packing(circles, overhang, overlap, best_known=1.0)
    # The pair 0-1, and circles 0 and 1 on the walls: a circle counts once however many it touches.
    assert metrics["contacts"] == 3.0
    assert metrics["sum_radii"] == math.fsum([0.25, 0.25, 0.1])
    assert metrics["min_radius"] == 0.1 and metrics["max_radius"] == 0.25
    assert "circle 2 could still grow by 1.500e-01 with the others fixed" in feedback
