"""heilbronn_triangle_11: published value reproduced, points outside the triangle rejected."""

from __future__ import annotations

from pathlib import Path

import pytest

from evolve.problem import load_problem
from evolve.scoring import Rejected

PROBLEMS = Path(__file__).resolve().parents[2] / "problems"
PROBLEM = "heilbronn_triangle_11"


@pytest.fixture(scope="module")
def scorer(load_scorer):
    return load_scorer(PROBLEM)


@pytest.fixture(scope="module")
def published(reference):
    return reference("heilbronn.json")["entries"][0]


def test_problem_folder_loads():
    problem = load_problem(PROBLEMS / PROBLEM)
    assert problem.spec.metrics.primary == "min_area"
    assert problem.maximize


def test_reproduces_published_value(scorer, published):
    assert published["name"] == "AlphaEvolve triangle n=11"
    metrics, _ = scorer.score(published["points"])
    assert metrics["min_area"] == pytest.approx(published["value"], rel=1e-9)


@pytest.mark.parametrize(
    ("index", "dx", "dy"),
    [
        (0, 0.0, -1e-9),  # below the bottom edge
        (5, -1e-9, 0.0),  # left of the left edge
        (7, 1e-9, 0.0),  # past the right edge
    ],
)
def test_rejects_a_point_just_outside(scorer, published, index, dx, dy):
    pts = [list(p) for p in published["points"]]
    pts[index][0] += dx
    pts[index][1] += dy
    with pytest.raises(Rejected, match=f"worst is point {index}"):
        scorer.score(pts)


def test_collinear_points_score_zero(scorer, published):
    pts = [list(p) for p in published["points"]]
    pts[3] = [(pts[0][0] + pts[1][0]) / 2, 0.0]
    assert scorer.score(pts)[0]["min_area"] == 0.0


def test_rejects_malformed_output(scorer, published):
    with pytest.raises(Rejected, match="exactly 11 points"):
        scorer.score(published["points"][:10])
    bad = [list(p) for p in published["points"]]
    bad[4][1] = float("inf")
    with pytest.raises(Rejected, match="non-finite"):
        scorer.score(bad)
    with pytest.raises(Rejected, match="not a real number"):
        scorer.score([["0.5", 0.1]] * 11)


def test_initial_program_is_valid_and_far_from_the_record(scorer, run_initial):
    metrics, _ = scorer.score(run_initial(PROBLEM))
    assert 0 < metrics["min_area"] < 0.02
