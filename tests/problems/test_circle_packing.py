"""circle_packing (26) and circle_packing_32: the scorers reproduce the published packings and
reject anything invalid. Every check runs for both problems."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from evolve.problem import load_problem
from evolve.scoring import Rejected

PROBLEMS = Path(__file__).resolve().parents[2] / "problems"


@dataclass(frozen=True)
class Case:
    n: int
    best_known: float
    initial_range: tuple[float, float]  # where the initial program's sum of radii must fall
    interior: int  # a circle of the v2 packing that touches no wall, only other circles


CASES = {
    "circle_packing": Case(n=26, best_known=2.6359830849, initial_range=(1.6, 2.2), interior=7),
    "circle_packing_32": Case(n=32, best_known=2.9395727712, initial_range=(1.8, 2.6), interior=8),
}
GROWN = [(problem, i) for problem, case in CASES.items() for i in range(case.n)]


@pytest.fixture(scope="module")
def published(reference):
    """``published[n][name]``: the reference packings of n circles, by name."""
    entries = reference("circle_packing_unit_square.json")["entries"]
    return {
        n: {e["name"]: e for e in entries if e["n"] == n} for n in {c.n for c in CASES.values()}
    }


def v2_copy(published, n):
    """A mutable copy of AlphaEvolve v2's packing of n circles (tight: zero slack)."""
    return [list(c) for c in published[n][f"AlphaEvolve v2 n={n}"]["circles"]]


@pytest.mark.parametrize("problem", CASES)
def test_problem_folder_loads(problem):
    loaded = load_problem(PROBLEMS / problem)
    assert loaded.spec.metrics.primary == "sum_radii"
    assert loaded.maximize
    assert loaded.spec.best_known is not None
    assert loaded.spec.best_known.value == pytest.approx(CASES[problem].best_known, abs=1e-10)


@pytest.mark.parametrize("problem", CASES)
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_reproduces_published_sum_of_radii(load_scorer, published, problem, version):
    n = CASES[problem].n
    entry = published[n][f"AlphaEvolve {version} n={n}"]
    metrics, _ = load_scorer(problem).score(entry["circles"])
    assert metrics["sum_radii"] == pytest.approx(entry["sum_radii"], rel=1e-9)


@pytest.mark.parametrize("problem", CASES)
def test_accepts_other_strict_published_packings(load_scorer, published, problem):
    for entry in published[CASES[problem].n].values():
        metrics, _ = load_scorer(problem).score(entry["circles"])
        assert metrics["sum_radii"] == pytest.approx(entry["sum_radii"], rel=1e-9)


@pytest.mark.parametrize(("problem", "i"), GROWN)
def test_rejects_any_radius_grown_by_1e9_in_tight_packing(load_scorer, published, problem, i):
    circles = v2_copy(published, CASES[problem].n)
    circles[i][2] += 1e-9
    with pytest.raises(Rejected, match=r"overlap|stick out"):
        load_scorer(problem).score(circles)


@pytest.mark.parametrize("problem", CASES)
@pytest.mark.parametrize(
    ("index", "column", "value"),
    [
        (0, 0, None),  # x = 1 - r/2: half the circle past the right wall
        (4, 1, -0.01),  # centre below the bottom wall
    ],
)
def test_rejects_circle_outside_square(load_scorer, published, problem, index, column, value):
    circles = v2_copy(published, CASES[problem].n)
    circles[index][column] = 1.0 - circles[index][2] / 2 if value is None else value
    with pytest.raises(Rejected, match=f"stick out of the unit square; worst is circle {index} "):
        load_scorer(problem).score(circles)


@pytest.mark.parametrize("problem", CASES)
@pytest.mark.parametrize(("index", "radius"), [(5, -1e-3), (2, -0.5)])
def test_rejects_negative_radius(load_scorer, published, problem, index, radius):
    circles = v2_copy(published, CASES[problem].n)
    circles[index][2] = radius
    with pytest.raises(Rejected, match=f"circle {index} has negative radius"):
        load_scorer(problem).score(circles)


@pytest.mark.parametrize("problem", CASES)
@pytest.mark.parametrize(("index", "column"), [(3, 1), (2, 2)])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_rejects_nan_and_infinity(load_scorer, published, problem, index, column, bad):
    circles = v2_copy(published, CASES[problem].n)
    circles[index][column] = bad
    with pytest.raises(Rejected, match=f"circle {index} has a non-finite value"):
        load_scorer(problem).score(circles)


@pytest.mark.parametrize(
    ("problem", "count"),
    [(p, count) for p, c in CASES.items() for count in sorted({0, 26, c.n - 1, c.n + 1} - {c.n})],
)
def test_rejects_wrong_count(load_scorer, published, problem, count):
    n = CASES[problem].n
    circles = (v2_copy(published, n) * 2)[:count]
    with pytest.raises(Rejected, match=f"exactly {n} circles, got {count}"):
        load_scorer(problem).score(circles)


@pytest.mark.parametrize("problem", CASES)
@pytest.mark.parametrize(
    "row",
    [None, [0.5, 0.5], [0.5, 0.5, 0.01, 0.0], ["0.5", 0.5, 0.01], [True, 0.5, 0.01]],
)
def test_rejects_malformed_rows(load_scorer, problem, row):
    with pytest.raises(Rejected):
        load_scorer(problem).score([row] * CASES[problem].n)


@pytest.mark.parametrize("problem", CASES)
@pytest.mark.parametrize("output", [None, "circles", {"circles": []}])
def test_rejects_malformed_output(load_scorer, problem, output):
    with pytest.raises(Rejected):
        load_scorer(problem).score(output)


@pytest.mark.parametrize("problem", CASES)
def test_overlap_message_names_the_worst_pair(load_scorer, published, problem):
    case = CASES[problem]
    circles = v2_copy(published, case.n)
    circles[case.interior][2] += 1e-3
    with pytest.raises(Rejected) as err:
        load_scorer(problem).score(circles)
    assert "circles" in str(err.value) and str(case.interior) in str(err.value)


@pytest.mark.parametrize("problem", CASES)
def test_tolerance_is_1e12_absolute(load_scorer, problem):
    scorer = load_scorer(problem)
    n = CASES[problem].n
    assert n == scorer.N
    # Two circles of radius 0.25 side by side, touching each other and the walls exactly.
    base = [[0.25, 0.25, 0.25], [0.75, 0.25, 0.25]] + [[0.5, 0.75, 0.0]] * (n - 2)
    inflated = [list(c) for c in base]
    inflated[0][2] += 4e-13
    scorer.score(inflated)
    inflated[0][2] += 2e-12
    with pytest.raises(Rejected):
        scorer.score(inflated)


@pytest.mark.parametrize("problem", CASES)
def test_initial_program_is_valid_and_far_from_the_record(load_scorer, run_initial, problem):
    case = CASES[problem]
    start = time.perf_counter()
    output = run_initial(problem)
    elapsed = time.perf_counter() - start
    metrics, feedback = load_scorer(problem).score(output)
    low, high = case.initial_range
    assert low <= metrics["sum_radii"] <= high
    assert "valid packing" in feedback
    assert elapsed < 1.0
    assert np.asarray(output).shape == (case.n, 3)
