"""min_max_distance_2d_16 / _3d_14: published ratios reproduced, degenerate outputs rejected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evolve.problem import load_problem
from evolve.scoring import Rejected

PROBLEMS = Path(__file__).resolve().parents[2] / "problems"
CASES = {
    "min_max_distance_2d_16": ("AlphaEvolve n=16 d=2", 16, 2, 12.8892661120),
    "min_max_distance_3d_14": ("AlphaEvolve n=14 d=3", 14, 3, 4.1658497672),
}


@pytest.fixture(scope="module")
def published(reference):
    return {e["name"]: e for e in reference("min_max_distance_ratio.json")["entries"]}


@pytest.mark.parametrize("problem", CASES)
def test_problem_folder_loads(problem):
    loaded = load_problem(PROBLEMS / problem)
    assert loaded.spec.metrics.primary == "ratio_squared"
    assert not loaded.maximize
    assert loaded.spec.best_known is not None
    assert loaded.spec.best_known.value == pytest.approx(CASES[problem][3], rel=1e-9)


@pytest.mark.parametrize("problem", CASES)
def test_reproduces_published_ratio(load_scorer, published, problem):
    entry = published[CASES[problem][0]]
    metrics, _ = load_scorer(problem).score(entry["points"])
    assert metrics["ratio_squared"] == pytest.approx(entry["value"], rel=1e-9)


@pytest.mark.parametrize("problem", CASES)
def test_score_is_recomputed_and_invariant_under_similarity(load_scorer, published, problem):
    scorer = load_scorer(problem)
    pts = np.array(published[CASES[problem][0]]["points"])
    moved = 3.7 * pts + 11.0
    assert scorer.score(moved.tolist())[0]["ratio_squared"] == pytest.approx(
        published[CASES[problem][0]]["value"], rel=1e-9
    )
    nudged = pts.copy()
    nudged[0] += 1e-4
    assert scorer.score(nudged.tolist())[0]["ratio_squared"] > published[CASES[problem][0]]["value"]


def _rotation(dim, angle):
    rot = np.eye(dim)
    rot[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    if dim == 3:  # and a second turn about the first axis, so no coordinate is left alone
        turn = np.eye(3)
        turn[1:, 1:] = [[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]]
        rot = turn @ rot
    return rot


@pytest.mark.parametrize("scale", [1e-161, 1e-162, 1e150, 1e300 / 3])
@pytest.mark.parametrize("rotate", [False, True])
@pytest.mark.parametrize("problem", CASES)
def test_published_record_scores_the_record_at_any_scale(
    load_scorer, published, problem, rotate, scale
):
    # Squared distances of points near 1e-161 are subnormal doubles and near 1e300 overflow;
    # the scorer's exact arithmetic must see the same shape, never a fake record or a rejection.
    entry = published[CASES[problem][0]]
    pts = np.array(entry["points"])
    if rotate:
        pts = pts @ _rotation(pts.shape[1], 0.7).T
    metrics, _ = load_scorer(problem).score((pts * scale).tolist())
    assert metrics["ratio_squared"] == pytest.approx(entry["value"], rel=1e-9)
    assert metrics["ratio_squared"] >= entry["value"] * (1 - 1e-12)


@pytest.mark.parametrize("problem", CASES)
def test_rejects_degenerate_and_malformed_points(load_scorer, published, problem):
    scorer = load_scorer(problem)
    _, n, dim, _ = CASES[problem]
    pts = [list(p) for p in published[CASES[problem][0]]["points"]]
    coincide = [list(p) for p in pts]
    coincide[1] = list(coincide[0])
    with pytest.raises(Rejected, match="points 0 and 1 coincide"):
        scorer.score(coincide)
    with pytest.raises(Rejected, match=f"exactly {n} points"):
        scorer.score(pts[:-1])
    with pytest.raises(Rejected, match=f"expected {dim} coordinates"):
        scorer.score([[*p, 0.0] for p in pts])
    bad = [list(p) for p in pts]
    bad[2][0] = float("nan")
    with pytest.raises(Rejected, match="non-finite"):
        scorer.score(bad)


@pytest.mark.parametrize("problem", CASES)
def test_initial_program_is_valid_and_far_from_the_record(load_scorer, run_initial, problem):
    metrics, _ = load_scorer(problem).score(run_initial(problem))
    assert metrics["ratio_squared"] > 1.2 * CASES[problem][3]
