"""circle_packing_32: the scorer reproduces the published packings and rejects anything invalid."""

from __future__ import annotations

from pathlib import Path

import pytest

from evolve.problem import load_problem
from evolve.scoring import Rejected

PROBLEMS = Path(__file__).resolve().parents[2] / "problems"
PROBLEM = "circle_packing_32"


@pytest.fixture(scope="module")
def scorer(load_scorer):
    return load_scorer(PROBLEM)


@pytest.fixture(scope="module")
def published(reference):
    entries = reference("circle_packing_unit_square.json")["entries"]
    return {e["name"]: e for e in entries if e["n"] == 32}


@pytest.fixture(scope="module")
def v2(published):
    return published["AlphaEvolve v2 n=32"]["circles"]


def test_problem_folder_loads():
    problem = load_problem(PROBLEMS / PROBLEM)
    assert problem.spec.metrics.primary == "sum_radii"
    assert problem.maximize
    assert problem.spec.best_known is not None
    assert problem.spec.best_known.value == pytest.approx(2.9395727712, abs=1e-10)


@pytest.mark.parametrize("name", ["AlphaEvolve v1 n=32", "AlphaEvolve v2 n=32"])
def test_reproduces_published_sum_of_radii(scorer, published, name):
    entry = published[name]
    metrics, _ = scorer.score(entry["circles"])
    assert metrics["sum_radii"] == pytest.approx(entry["sum_radii"], rel=1e-9)


@pytest.mark.parametrize("i", range(32))
def test_rejects_any_radius_grown_by_1e9_in_tight_packing(scorer, v2, i):
    circles = [list(c) for c in v2]
    circles[i][2] += 1e-9
    with pytest.raises(Rejected, match=r"overlap|stick out"):
        scorer.score(circles)


def test_rejects_circle_outside_and_wrong_count(scorer, v2):
    circles = [list(c) for c in v2]
    circles[4][1] = -0.01
    with pytest.raises(Rejected, match="stick out of the unit square"):
        scorer.score(circles)
    with pytest.raises(Rejected, match="exactly 32 circles, got 26"):
        scorer.score(v2[:26])


def test_rejects_negative_radius_and_nan(scorer, v2):
    circles = [list(c) for c in v2]
    circles[2][2] = -0.5
    with pytest.raises(Rejected, match="negative radius"):
        scorer.score(circles)
    circles[2][2] = float("nan")
    with pytest.raises(Rejected, match="non-finite"):
        scorer.score(circles)


def test_initial_program_is_valid_and_far_from_the_record(scorer, run_initial):
    metrics, _ = scorer.score(run_initial(PROBLEM))
    assert 1.8 <= metrics["sum_radii"] <= 2.6
