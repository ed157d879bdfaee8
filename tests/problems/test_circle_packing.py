"""circle_packing: the scorer reproduces the published packings and rejects anything invalid."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from evolve.problem import load_problem
from evolve.scoring import Rejected

PROBLEMS = Path(__file__).resolve().parents[2] / "problems"
PROBLEM = "circle_packing"


@pytest.fixture(scope="module")
def scorer(load_scorer):
    return load_scorer(PROBLEM)


@pytest.fixture(scope="module")
def published(reference):
    entries = reference("circle_packing_unit_square.json")["entries"]
    return {e["name"]: e for e in entries if e["n"] == 26}


@pytest.fixture(scope="module")
def v2(published):
    return published["AlphaEvolve v2 n=26"]["circles"]


def test_problem_folder_loads():
    problem = load_problem(PROBLEMS / PROBLEM)
    assert problem.spec.metrics.primary == "sum_radii"
    assert problem.maximize
    assert problem.spec.best_known is not None
    assert problem.spec.best_known.value == pytest.approx(2.6359830849, abs=1e-10)


@pytest.mark.parametrize("name", ["AlphaEvolve v1 n=26", "AlphaEvolve v2 n=26"])
def test_reproduces_published_sum_of_radii(scorer, published, name):
    entry = published[name]
    metrics, _ = scorer.score(entry["circles"])
    assert metrics["sum_radii"] == pytest.approx(entry["sum_radii"], rel=1e-9)


def test_accepts_other_strict_published_packings(scorer, published):
    for entry in published.values():
        metrics, _ = scorer.score(entry["circles"])
        assert metrics["sum_radii"] == pytest.approx(entry["sum_radii"], rel=1e-9)


@pytest.mark.parametrize("i", range(26))
def test_rejects_any_radius_grown_by_1e9_in_tight_packing(scorer, v2, i):
    circles = [list(c) for c in v2]
    circles[i][2] += 1e-9
    with pytest.raises(Rejected, match=r"overlap|stick out"):
        scorer.score(circles)


def test_rejects_circle_outside_square(scorer, v2):
    circles = [list(c) for c in v2]
    circles[0][0] = 1.0 - circles[0][2] / 2
    with pytest.raises(Rejected, match="stick out of the unit square; worst is circle 0"):
        scorer.score(circles)


def test_rejects_negative_radius(scorer, v2):
    circles = [list(c) for c in v2]
    circles[5][2] = -1e-3
    with pytest.raises(Rejected, match="circle 5 has negative radius"):
        scorer.score(circles)


def test_rejects_nan_and_infinity(scorer, v2):
    for bad in (math.nan, math.inf):
        circles = [list(c) for c in v2]
        circles[3][1] = bad
        with pytest.raises(Rejected, match="circle 3 has a non-finite value"):
            scorer.score(circles)


@pytest.mark.parametrize("count", [0, 25, 27])
def test_rejects_wrong_count(scorer, v2, count):
    circles = (v2 * 2)[:count]
    with pytest.raises(Rejected, match=f"exactly 26 circles, got {count}"):
        scorer.score(circles)


@pytest.mark.parametrize(
    "output",
    [
        None,
        "circles",
        {"circles": []},
        [[0.5, 0.5]] * 26,
        [[0.5, 0.5, 0.01, 0.0]] * 26,
        [["0.5", 0.5, 0.01]] * 26,
        [[True, 0.5, 0.01]] * 26,
    ],
)
def test_rejects_malformed_output(scorer, output):
    with pytest.raises(Rejected):
        scorer.score(output)


def test_overlap_message_names_the_worst_pair(scorer, v2):
    circles = [list(c) for c in v2]
    circles[7][2] += 1e-3
    with pytest.raises(Rejected) as err:
        scorer.score(circles)
    assert "circles" in str(err.value) and "7" in str(err.value)


def test_tolerance_is_1e12_absolute(scorer):
    # Two circles of radius 0.25 side by side, touching each other and the walls exactly.
    base = [[0.25, 0.25, 0.25], [0.75, 0.25, 0.25]] + [[0.5, 0.75, 0.0]] * 24
    scorer_n = scorer.N
    assert scorer_n == 26
    inflated = [list(c) for c in base]
    inflated[0][2] += 4e-13
    scorer.score(inflated)
    inflated[0][2] += 2e-12
    with pytest.raises(Rejected):
        scorer.score(inflated)


def test_initial_program_is_valid_and_far_from_the_record(scorer, run_initial):
    start = time.perf_counter()
    output = run_initial(PROBLEM)
    elapsed = time.perf_counter() - start
    metrics, feedback = scorer.score(output)
    assert 1.6 <= metrics["sum_radii"] <= 2.2
    assert "valid packing" in feedback
    assert elapsed < 1.0
    assert np.asarray(output).shape == (26, 3)
