"""Which ensemble member proposes next: weighted sampling, optionally steered by a bandit.

Pure policy: every function takes the arms' statistics and the configured weights and, where it
draws, an injected :class:`numpy.random.Generator`. The bandits reward a model for children that
improve on their parents *per dollar*: an arm's value is its mean reward divided by its mean cost
per proposal (plus a small floor, so that free local models are valued highly but finitely).

A proposal is counted when it is *selected*, before its reward is known, so that many proposals
in flight at once spread over the arms instead of all going to the current favourite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

__all__ = [
    "ArmStats",
    "BanditPolicy",
    "choose_arm",
    "record_reward",
    "record_selection",
    "thompson_choice",
    "ucb1_probabilities",
    "weight_probabilities",
]

BanditPolicy = Literal["ucb1", "thompson"]

#: USD added to every arm's mean cost: a free model is worth a lot, not infinitely much.
COST_FLOOR_USD = 1e-4


@dataclass(frozen=True, slots=True)
class ArmStats:
    """What is known about one model: proposals made, rewarded, reward and cost so far."""

    selections: int = 0
    reports: int = 0
    reward: float = 0.0  # number of improving children (each reward is 0 or 1)
    cost_usd: float = 0.0  # sum of reported costs

    @property
    def mean_reward(self) -> float:
        return self.reward / self.reports if self.reports else 0.0

    @property
    def mean_cost(self) -> float:
        return self.cost_usd / self.reports if self.reports else 0.0


def record_selection(stats: ArmStats) -> ArmStats:
    """The arm was chosen for one more proposal."""
    return replace(stats, selections=stats.selections + 1)


def record_reward(stats: ArmStats, improved: bool | float, cost_usd: float) -> ArmStats:
    """One proposal's outcome: whether its child improved on its parent, and what it cost.

    ``improved`` may be a bool or the fitness gain of the child over its parent; a gain counts
    as an improvement when it is positive. Its size is ignored on purpose: fitness scales differ
    from problem to problem, and a success count per dollar is what the bandit compares.
    """
    reward = 1.0 if improved > 0 else 0.0
    return replace(
        stats,
        reports=stats.reports + 1,
        reward=stats.reward + reward,
        cost_usd=stats.cost_usd + max(cost_usd, 0.0),
    )


def weight_probabilities(weights: Sequence[float]) -> np.ndarray:
    """Normalise non-negative weights into probabilities that sum to one.

    Raises:
        ValueError: a negative or non-finite weight, or no positive weight at all.
    """
    w = np.asarray(weights, dtype=float)
    if w.size == 0 or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"weights must be finite, >= 0 and not all zero: {list(weights)}")
    return np.asarray(w / w.sum())


def _efficiency(stats: Sequence[ArmStats]) -> np.ndarray:
    """Mean reward per dollar of each arm, scaled so the best arm is 1 (all 0 without rewards)."""
    eff = np.array([s.mean_reward / (s.mean_cost + COST_FLOOR_USD) for s in stats])
    top = eff.max() if eff.size else 0.0
    return np.asarray(eff / top) if top > 0 else np.zeros(len(stats))


def ucb1_probabilities(
    stats: Sequence[ArmStats], weights: Sequence[float], *, exploration: float = 1.0
) -> np.ndarray:
    """UCB1 (Auer et al., 2002) over eligible arms (weight > 0), as a distribution.

    An arm never selected comes first; otherwise the arm with the largest normalised reward per
    dollar plus ``exploration * sqrt(2 ln N / n)`` wins. Ties share the probability equally.
    """
    eligible = weight_probabilities(weights) > 0
    n = np.array([s.selections for s in stats], dtype=float)
    untried = eligible & (n == 0)
    if untried.any():
        return np.asarray(untried / untried.sum())
    total = n[eligible].sum()
    index = _efficiency(stats) + exploration * np.sqrt(2.0 * math.log(total) / np.maximum(n, 1))
    index = np.where(eligible, index, -np.inf)
    best = np.isclose(index, index.max(), rtol=0.0, atol=1e-12)
    return np.asarray(best / best.sum())


def thompson_choice(
    stats: Sequence[ArmStats], weights: Sequence[float], rng: np.random.Generator
) -> int:
    """Thompson sampling (Thompson, 1933): draw each arm's success rate from its Beta posterior,
    divide by its mean cost, and pick the best eligible arm (weight > 0).

    Arms with no reported cost borrow the mean cost of the others, so a new arm is not favoured
    for looking free.
    """
    eligible = weight_probabilities(weights) > 0
    costs = [s.mean_cost for s in stats if s.reports]
    prior_cost = float(np.mean(costs)) if costs else 0.0
    scores = np.full(len(stats), -np.inf)
    for i, s in enumerate(stats):
        if not eligible[i]:
            continue
        theta = rng.beta(1.0 + s.reward, 1.0 + s.reports - s.reward)
        cost = s.mean_cost if s.reports else prior_cost
        scores[i] = theta / (cost + COST_FLOOR_USD)
    return int(np.argmax(scores))


def choose_arm(
    policy: BanditPolicy | None,
    stats: Sequence[ArmStats],
    weights: Sequence[float],
    rng: np.random.Generator,
) -> int:
    """The index of the next model: by weight alone, or by the bandit ``policy``."""
    if len(stats) != len(weights):
        raise ValueError("one ArmStats per weight")
    if policy == "thompson":
        return thompson_choice(stats, weights, rng)
    probs = (
        ucb1_probabilities(stats, weights) if policy == "ucb1" else weight_probabilities(weights)
    )
    return int(rng.choice(len(probs), p=probs))
