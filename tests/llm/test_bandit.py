"""Ensemble selection policy: weighted sampling, UCB1 and Thompson sampling (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import chisquare

from evolve.llm.bandit import (
    ArmStats,
    BanditPolicy,
    choose_arm,
    record_reward,
    record_selection,
    thompson_choice,
    ucb1_probabilities,
    weight_probabilities,
)

weights_st = st.lists(st.floats(0.0, 100.0), min_size=1, max_size=6).filter(lambda w: sum(w) > 0)
arm_st = st.builds(
    lambda sel, rep, frac, cost: ArmStats(sel, min(rep, sel), min(rep, sel) * frac, cost),
    st.integers(0, 50),
    st.integers(0, 50),
    st.floats(0.0, 1.0),
    st.floats(0.0, 5.0),
)


@given(weights=weights_st)
def test_weight_probabilities_sum_to_one_and_keep_proportions(weights: list[float]) -> None:
    probs = weight_probabilities(weights)
    assert probs.sum() == pytest.approx(1.0)
    assert np.all(probs >= 0)
    assert np.allclose(probs * sum(weights), weights)


@pytest.mark.parametrize("bad", [[], [0.0, 0.0], [1.0, -1.0], [float("nan")]])
def test_weight_probabilities_reject_bad_weights(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        weight_probabilities(bad)


@given(data=st.data(), weights=weights_st)
def test_ucb1_probabilities_sum_to_one_and_skip_zero_weight_arms(
    data: st.DataObject, weights: list[float]
) -> None:
    stats = data.draw(st.lists(arm_st, min_size=len(weights), max_size=len(weights)))
    probs = ucb1_probabilities(stats, weights)
    assert probs.sum() == pytest.approx(1.0)
    assert np.all(probs[np.asarray(weights) == 0] == 0)


@given(data=st.data(), weights=weights_st, seed=st.integers(0, 2**32 - 1))
def test_thompson_picks_an_arm_with_positive_weight(
    data: st.DataObject, weights: list[float], seed: int
) -> None:
    stats = data.draw(st.lists(arm_st, min_size=len(weights), max_size=len(weights)))
    arm = thompson_choice(stats, weights, np.random.default_rng(seed))
    assert weights[arm] > 0


def test_weighted_draws_follow_the_weights() -> None:
    rng = np.random.default_rng(2024)
    weights = [0.6, 0.3, 0.1]
    stats = [ArmStats()] * 3
    draws = [choose_arm(None, stats, weights, rng) for _ in range(6000)]
    observed = np.bincount(draws, minlength=3)
    result = chisquare(observed, f_exp=np.array(weights) * len(draws))
    assert result.pvalue > 0.01


def test_ucb1_tries_every_arm_before_repeating_one() -> None:
    stats = [ArmStats(), ArmStats(), ArmStats()]
    rng = np.random.default_rng(0)
    chosen = []
    for _ in range(3):
        arm = choose_arm("ucb1", stats, [1.0, 1.0, 1.0], rng)
        stats[arm] = record_selection(stats[arm])
        chosen.append(arm)
    assert sorted(chosen) == [0, 1, 2]


def test_positive_gains_count_as_improvements_and_costs_add_up() -> None:
    stats = ArmStats()
    for improved in (3.0, 1e-9, True, False, 0.0, -2.0):
        stats = record_reward(stats, improved, 0.25)
    assert (stats.reports, stats.reward, stats.cost_usd) == (6, 3.0, 1.5)


@pytest.mark.parametrize("policy", ["ucb1", "thompson"])
def test_bandit_shifts_toward_the_model_improving_most_per_dollar(policy: BanditPolicy) -> None:
    # Arm 0 improves 30% of the time at $0.01; arm 1 improves 30% of the time at $0.10.
    rng = np.random.default_rng(11)
    success, cost = [0.3, 0.3], [0.01, 0.10]
    stats = [ArmStats(), ArmStats()]
    picks = []
    for _ in range(600):
        arm = choose_arm(policy, stats, [1.0, 1.0], rng)
        stats[arm] = record_selection(stats[arm])
        stats[arm] = record_reward(stats[arm], bool(rng.random() < success[arm]), cost[arm])
        picks.append(arm)
    late = picks[300:]
    assert late.count(0) / len(late) > 0.7
