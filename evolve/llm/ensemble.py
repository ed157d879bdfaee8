"""Several models behind one :class:`~evolve.llm.base.LLM`: each proposal goes to one of them.

The member is chosen by weight, or by a bandit that learns which models' children improve on
their parents most per dollar (see :mod:`evolve.llm.bandit`). The controller feeds the bandit by
calling :meth:`EnsembleLLM.report` once a child has been evaluated. Each member keeps its own
concurrency limit, so a slow provider never stalls proposals routed to the others.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from evolve.llm.bandit import (
    ArmStats,
    BanditPolicy,
    choose_arm,
    record_reward,
    record_selection,
    ucb1_probabilities,
    weight_probabilities,
)
from evolve.llm.base import LLM
from evolve.records import LLMReply, LLMRequest

__all__ = ["EnsembleLLM"]


class EnsembleLLM:
    """Routes each request to one member model.

    Args:
        members: the models; their ``name`` values must be unique (they key :meth:`report`).
        weights: sampling weight of each member, >= 0, not all zero.
        rng: the source of every choice, for reproducible runs: a request's model is drawn from
            this ensemble's seed (one draw of ``rng``) and the request's ``seed``, so a seeded
            run routes each iteration to the same model whatever order the calls arrive in.
        bandit: ``None`` samples by weight; ``"ucb1"`` or ``"thompson"`` steer by reward per
            dollar among members with a positive weight.
    """

    def __init__(
        self,
        members: Sequence[LLM],
        weights: Sequence[float],
        rng: np.random.Generator,
        *,
        bandit: BanditPolicy | None = None,
    ) -> None:
        names = [m.name for m in members]
        if len(set(names)) != len(names):
            raise ValueError(f"ensemble member names must be unique: {names}")
        if len(weights) != len(members):
            raise ValueError("one weight per ensemble member")
        weight_probabilities(weights)  # validates
        self._members = tuple(members)
        self._weights = tuple(float(w) for w in weights)
        self._rng = rng
        self._base = int(rng.integers(2**63 - 1))
        self._seen: Counter[int] = Counter()  # requests per seed (a retried prompt reuses its seed)
        self._bandit: BanditPolicy | None = bandit
        self._index = {name: i for i, name in enumerate(names)}
        self._stats = [ArmStats() for _ in members]

    @property
    def name(self) -> str:
        return "ensemble(" + ",".join(m.name for m in self._members) + ")"

    @property
    def members(self) -> tuple[LLM, ...]:
        """The member models, in configuration order."""
        return self._members

    @property
    def stats(self) -> dict[str, ArmStats]:
        """What the ensemble knows about each member, by model name."""
        return {m.name: s for m, s in zip(self._members, self._stats, strict=True)}

    def probabilities(self) -> dict[str, float]:
        """How likely each member is to get the next proposal (UCB1 and weights only)."""
        if self._bandit == "ucb1":
            probs = ucb1_probabilities(self._stats, self._weights)
        else:
            probs = weight_probabilities(self._weights)
        return {m.name: float(p) for m, p in zip(self._members, probs, strict=True)}

    def choose(self, seed: int | None = None) -> LLM:
        """Pick the member for a proposal and count the selection.

        Args:
            seed: the request's seed; the choice depends only on it (and on how many earlier
                requests had it). ``None`` draws from the ensemble's generator in call order.
        """
        rng = self._rng
        if seed is not None:
            rng = np.random.default_rng([self._base, seed % 2**63, self._seen[seed]])
            self._seen[seed] += 1
        i = choose_arm(self._bandit, self._stats, self._weights, rng)
        self._stats[i] = record_selection(self._stats[i])
        return self._members[i]

    async def complete(self, request: LLMRequest) -> LLMReply:
        """Send ``request`` to one member; its errors propagate unchanged."""
        return await self.choose(request.seed).complete(request)

    def report(self, model: str, improved: bool | float, cost_usd: float) -> None:
        """Tell the bandit how a proposal by ``model`` turned out.

        Args:
            model: the member's name, as in ``LLMReply.model``.
            improved: whether the child beat its parent, or its fitness gain over the parent
                (positive counts as improved; the size is ignored).
            cost_usd: what the proposal cost (``LLMReply.cost_usd``).

        Raises:
            KeyError: ``model`` is not a member.
        """
        if model not in self._index:
            raise KeyError(f"model '{model}' is not in {self.name}")
        i = self._index[model]
        self._stats[i] = record_reward(self._stats[i], improved, cost_usd)

    async def aclose(self) -> None:
        for member in self._members:
            await member.aclose()
