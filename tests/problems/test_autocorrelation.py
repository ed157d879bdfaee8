"""first/second/third_autocorrelation: published bounds reproduced, invalid functions rejected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evolve.problem import load_problem
from evolve.scoring import Rejected

PROBLEMS = Path(__file__).resolve().parents[2] / "problems"
METRIC = {
    "first_autocorrelation": "c1",
    "second_autocorrelation": "c2",
    "third_autocorrelation": "c3",
}
PUBLISHED = [
    ("first_autocorrelation", "C1 AlphaEvolve v1 (600 steps)"),
    ("first_autocorrelation", "C1 AlphaEvolve v2 (1319 steps, as archived by ThetaEvolve)"),
    ("first_autocorrelation", "C1 ThetaEvolve best (1319 steps)"),
    (
        "first_autocorrelation",
        "C1 human best (Matolcsi-Vinuesa, 208 steps, as archived by ThetaEvolve)",
    ),
    ("second_autocorrelation", "C2 AlphaEvolve v1 (50 steps)"),
    ("second_autocorrelation", "C2 ThetaEvolve best (3072 steps)"),
    ("third_autocorrelation", "C3' AlphaEvolve (150 steps), max|conv| variant"),
    ("third_autocorrelation", "C3' ThetaEvolve best (400 steps)"),
]


@pytest.fixture(scope="module")
def published(reference):
    return {e["name"]: e for e in reference("autocorrelation_inequalities.json")["entries"]}


@pytest.mark.parametrize("problem", METRIC)
def test_problem_folder_loads(problem):
    loaded = load_problem(PROBLEMS / problem)
    assert loaded.spec.metrics.primary == METRIC[problem]
    assert loaded.spec.best_known is not None


@pytest.mark.parametrize(("problem", "name"), PUBLISHED)
def test_reproduces_published_bound(load_scorer, published, problem, name):
    entry = published[name]
    metrics, _ = load_scorer(problem).score(entry["heights"])
    # The archived ThetaEvolve values carry 10 decimals, hence the absolute term.
    assert metrics[METRIC[problem]] == pytest.approx(entry["value"], rel=1e-9, abs=1e-10)


def test_third_scores_the_max_abs_variant_not_abs_max(load_scorer, published):
    # AlphaEvolve's |max f*f| construction (1.4556 in that variant) is a poor max|f*f| function.
    entry = published["C3 AlphaEvolve (400 steps), |max conv| variant"]
    c3 = load_scorer("third_autocorrelation").score(entry["heights"])[0]["c3"]
    assert c3 == pytest.approx(4.3340465244, rel=1e-9)


@pytest.mark.parametrize(("problem", "name"), PUBLISHED)
def test_score_is_scale_invariant(load_scorer, published, problem, name):
    heights = np.array(published[name]["heights"])
    value = published[name]["value"]
    for factor in (1e-150, 1e150):
        metrics, _ = load_scorer(problem).score((heights * factor).tolist())
        assert metrics[METRIC[problem]] == pytest.approx(value, rel=1e-9, abs=1e-10)


@pytest.mark.parametrize(
    ("problem", "name"),
    [(p, n) for p, n in PUBLISHED if p != "third_autocorrelation"],
)
def test_rejects_one_slightly_negative_height(load_scorer, published, problem, name):
    heights = list(published[name]["heights"])
    heights[len(heights) // 2] = -1e-12
    with pytest.raises(Rejected, match="negative height"):
        load_scorer(problem).score(heights)


@pytest.mark.parametrize("problem", METRIC)
def test_rejects_malformed_heights(load_scorer, problem):
    scorer = load_scorer(problem)
    for bad, reason in [
        ([], "between 1 and"),
        ([1.0, float("nan")], "not finite"),
        ([1.0, float("inf")], "not finite"),
        ([[1.0, 2.0]], "not a real number"),
        ([1.0, True], "not a real number"),
        ([0.0, 0.0], "zero"),
        ({"heights": [1.0]}, "flat list"),
    ]:
        with pytest.raises(Rejected, match=reason):
            scorer.score(bad)


def test_third_rejects_zero_sum(load_scorer):
    with pytest.raises(Rejected, match="sum to 0"):
        load_scorer("third_autocorrelation").score([1.0, -1.0])


@pytest.mark.parametrize("problem", METRIC)
def test_long_inputs_use_fft_consistently(load_scorer, problem):
    scorer = load_scorer(problem)
    rng = np.random.default_rng(0)
    heights = rng.uniform(0.5, 1.0, scorer.DIRECT_MAX + 1)
    slow = heights[: scorer.DIRECT_MAX]
    fast_value = scorer.score(heights.tolist())[0][METRIC[problem]]
    slow_value = scorer.score(slow.tolist())[0][METRIC[problem]]
    # One more step barely moves a bound of a smooth random function; FFT error is ~1e-15.
    assert fast_value == pytest.approx(slow_value, rel=1e-3)


@pytest.mark.parametrize(
    ("problem", "baseline"),
    [
        ("first_autocorrelation", 2.0),
        ("second_autocorrelation", 2 / 3),
        ("third_autocorrelation", 2.0),
    ],
)
def test_initial_program_is_the_constant_baseline(load_scorer, run_initial, problem, baseline):
    metrics, _ = load_scorer(problem).score(run_initial(problem))
    assert metrics[METRIC[problem]] == pytest.approx(baseline, rel=1e-12)
