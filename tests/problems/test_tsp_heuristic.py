"""tsp_heuristic: instances regenerated from the seed, tours re-verified, lengths recomputed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evolve.problem import load_problem
from evolve.scoring import Rejected

PROBLEMS = Path(__file__).resolve().parents[2] / "problems"
PROBLEM = "tsp_heuristic"


@pytest.fixture(scope="module")
def scorer(load_scorer):
    return load_scorer(PROBLEM)


def _nearest_neighbour(points):
    tour = [0]
    left = set(range(1, len(points)))
    while left:
        here = points[tour[-1]]
        nxt = min(left, key=lambda j: (float(np.hypot(*(points[j] - here))), j))
        tour.append(nxt)
        left.remove(nxt)
    return tour


@pytest.fixture(scope="module")
def nn_tours():
    rng = np.random.RandomState(2024)
    return [_nearest_neighbour(rng.rand(50, 2)) for _ in range(16)]


def test_problem_folder_loads_and_matches_the_scorer(scorer):
    spec = load_problem(PROBLEMS / PROBLEM).spec
    assert spec.entry_kwargs == {"seed": scorer.SEED, "count": scorer.COUNT, "size": scorer.SIZE}
    assert not load_problem(PROBLEMS / PROBLEM).maximize


def test_reproduces_the_nearest_neighbour_baseline(scorer, nn_tours):
    metrics, _ = scorer.score(nn_tours)
    assert metrics["mean_length"] == pytest.approx(6.8239686184, rel=1e-9)


def test_length_ignores_start_and_direction(scorer, nn_tours):
    turned = [list(reversed(t[7:] + t[:7])) for t in nn_tours]
    assert scorer.score(turned)[0]["mean_length"] == pytest.approx(6.8239686184, rel=1e-12)


def test_rejects_tours_that_are_not_permutations(scorer, nn_tours):
    for mutate, reason in [
        (lambda ts: ts[3].__setitem__(5, ts[3][6]), "tour 3 is not a permutation"),
        (lambda ts: ts[0].pop(), "tour 0: expected a list of all 50 cities"),
        (lambda ts: ts[1].__setitem__(0, 50), "not a city index"),
        (lambda ts: ts[1].__setitem__(0, 0.0), "not a city index"),
        (lambda ts: ts.pop(), "expected a list of 16 tours"),
    ]:
        tours = [list(t) for t in nn_tours]
        mutate(tours)
        with pytest.raises(Rejected, match=reason):
            scorer.score(tours)


def test_initial_program_is_nearest_neighbour(scorer, run_initial):
    metrics, _ = scorer.score(run_initial(PROBLEM))
    assert metrics["mean_length"] == pytest.approx(6.8239686184, rel=1e-9)
