"""erdos_min_overlap: the published bound reproduced, h outside [0, 1] rejected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evolve.problem import load_problem
from evolve.scoring import Rejected

PROBLEMS = Path(__file__).resolve().parents[2] / "problems"
PROBLEM = "erdos_min_overlap"


@pytest.fixture(scope="module")
def scorer(load_scorer):
    return load_scorer(PROBLEM)


@pytest.fixture(scope="module")
def published(reference):
    return reference("erdos_min_overlap.json")


def test_problem_folder_loads():
    problem = load_problem(PROBLEMS / PROBLEM)
    assert problem.spec.metrics.primary == "c5"
    assert not problem.maximize


def test_reproduces_published_bound(scorer, published):
    h = published["h"]
    assert np.sum(h) == len(h) / 2  # the published h is already normalized: no rescaling happens
    metrics, _ = scorer.score(h)
    assert metrics["c5"] == pytest.approx(published["value"], rel=1e-9)


def test_normalizes_the_integral_itself(scorer, published):
    h = np.array(published["h"]) * 0.5
    metrics, _ = scorer.score(h.tolist())
    assert metrics["c5"] == pytest.approx(published["value"], rel=1e-9)


def test_rejects_a_value_above_one_with_the_right_integral(scorer):
    eps = 2.0**-30  # exact in binary, so the sum is exactly n/2 = 2
    h = [1.0 + eps, 1.0 - eps, 0.0, 0.0]
    with pytest.raises(Rejected, match="exceed 1"):
        scorer.score(h)


def test_rejects_integral_slightly_low_when_a_value_is_one(scorer):
    # Rescaling h to integral 1 pushes the step at exactly 1 above 1.
    h = [1.0, 1.0 - 1e-9, 0.0, 0.0]
    with pytest.raises(Rejected, match="exceed 1"):
        scorer.score(h)


def test_rejects_negative_and_malformed_values(scorer, published):
    h = list(published["h"])
    h[3] = -1e-15
    with pytest.raises(Rejected, match="negative value"):
        scorer.score(h)
    for bad, reason in [
        ([], "between 1 and"),
        ([0.0, 0.0], "sums to 0"),
        ([0.5, float("nan")], "not finite"),
    ]:
        with pytest.raises(Rejected, match=reason):
            scorer.score(bad)


def test_initial_program_is_the_half_baseline(scorer, run_initial):
    metrics, _ = scorer.score(run_initial(PROBLEM))
    assert metrics["c5"] == pytest.approx(0.5, rel=1e-12)
