"""cap_set_8: the scorer verifies cap sets exactly and finds every line."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from evolve.problem import load_problem
from evolve.scoring import Rejected

PROBLEMS = Path(__file__).resolve().parents[2] / "problems"
PROBLEM = "cap_set_8"
ALL = np.array(list(itertools.product((0, 1, 2), repeat=8)))
BINARY = [list(v) for v in itertools.product((0, 1), repeat=8)]


@pytest.fixture(scope="module")
def scorer(load_scorer):
    return load_scorer(PROBLEM)


def test_problem_folder_loads():
    problem = load_problem(PROBLEMS / PROBLEM)
    assert problem.spec.metrics.primary == "size"
    assert problem.spec.best_known is not None
    assert problem.spec.best_known.value == 512


def test_accepts_the_binary_cap_set(scorer):
    assert scorer.score(BINARY)[0]["size"] == 256


def test_product_of_caps_is_a_cap(scorer):
    # A product of cap sets is a cap set: four copies of the 4-cap {0,1}^2 of F_3^2.
    four = [(0, 0), (0, 1), (1, 0), (1, 1)]
    product = [[*a, *b, *c, *d] for a, b, c, d in itertools.product(four, repeat=4)]
    assert scorer.score(product)[0]["size"] == 256


def test_rejects_one_extra_vector_that_closes_a_line(scorer):
    with pytest.raises(Rejected, match="lie on a line"):
        scorer.score([*BINARY, [2] * 8])


def test_agrees_with_brute_force_on_random_sets(scorer):
    rng = np.random.default_rng(0)
    for _ in range(60):
        subset = ALL[rng.choice(len(ALL), size=int(rng.integers(3, 25)), replace=False)]
        brute = any(((a + b + c) % 3 == 0).all() for a, b, c in itertools.combinations(subset, 3))
        try:
            scorer.score(subset.tolist())
            found = False
        except Rejected:
            found = True
        assert found == brute


def test_rejects_malformed_vectors(scorer):
    for bad, reason in [
        ([*BINARY[:3], BINARY[1]], "are equal"),
        ([[0] * 7 + [3]], "not one of the integers"),
        ([[0.0] * 8], "not one of the integers"),
        ([[True] + [0] * 7], "not one of the integers"),
        ([[0] * 7], "expected 8 entries"),
        ([], "between 1 and"),
    ]:
        with pytest.raises(Rejected, match=reason):
            scorer.score(bad)


def test_whole_space_is_rejected_quickly(scorer):
    with pytest.raises(Rejected, match="lie on a line"):
        scorer.score(ALL.tolist())


def test_initial_program_builds_the_trivial_cap(scorer, run_initial):
    metrics, _ = scorer.score(run_initial(PROBLEM))
    assert metrics["size"] == 256
