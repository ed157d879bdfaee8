"""The run's spending: cost and token budgets, counts for the display, and the circuit breaker."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from evolve.config import RunConfig
from evolve.errors import one_line
from evolve.llm.base import LLMError
from evolve.outcomes import RunHalted
from evolve.records import LLMReply, Program, Status


@dataclass
class Spending:
    """What the run has used so far (including what a resumed run spent before)."""

    evaluations: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    cost_usd: float = 0.0
    tokens: int = 0
    started: float = field(default_factory=time.monotonic)


class Budgets:
    """Decides when spending stops the run. Pure bookkeeping: it returns reasons, never acts."""

    def __init__(self, config: RunConfig, default_model: str) -> None:
        self._cfg = config
        self._default_model = default_model
        self.spent = Spending()
        self._streaks: Counter[str] = Counter()

    def reconfigure(self, config: RunConfig) -> str | None:
        """New limits (a ``budget`` command); what was spent stays counted. The stop reason if
        the new limits are already spent."""
        self._cfg = config
        return self.exceeded()

    def restore(self, usages: Iterable[Mapping[str, Any]]) -> None:
        """Count what a resumed run's earlier model calls spent (``Database.llm_usage`` rows)."""
        for usage in usages:
            self.spent.cost_usd += float(usage["cost_usd"] or 0.0)
            self.spent.tokens += int(usage["input_tokens"] or 0) + int(usage["output_tokens"] or 0)

    def count(self, program: Program) -> None:
        """Count a program told to the strategy: an evaluation (a duplicate is none), a failure."""
        if program.iteration > 0 and program.status is not Status.DUPLICATE:
            self.spent.evaluations += int(program.code is not None)
        if program.status.is_failure:
            self.spent.failures[program.status.value] += 1

    def charge(self, reply: LLMReply) -> str | None:
        """Count a reply (and end its model's failure streak); the stop reason if one is spent."""
        self._streaks[reply.model] = 0
        self.spent.cost_usd += reply.cost_usd
        self.spent.tokens += reply.input_tokens + reply.output_tokens
        return self.exceeded()

    def exceeded(self) -> str | None:
        """Why the cost or token budget stops the run, if it does."""
        cfg, spent = self._cfg, self.spent
        if cfg.max_cost_usd is not None and spent.cost_usd >= cfg.max_cost_usd:
            return f"max_cost_usd {cfg.max_cost_usd:g} reached (${spent.cost_usd:.4f})"
        if cfg.max_tokens is not None and spent.tokens >= cfg.max_tokens:
            return f"max_tokens {cfg.max_tokens} reached ({spent.tokens})"
        return None

    def llm_failed(self, exc: LLMError) -> RunHalted | None:
        """The circuit breaker: a model that fails ``max_llm_failures`` calls in a row (each
        after its retries) stops the run instead of burning every iteration; so does a server
        that asks to wait longer than the retry budget allows (``rate_limited``)."""
        model = exc.model or self._default_model
        self._streaks[model] += 1
        limit = self._cfg.max_llm_failures
        if exc.kind == "rate_limited":
            why = "asks to wait longer than llm.retry.max_retry_after_s"
        elif self._streaks[model] >= limit:
            why = f"failed {limit} calls in a row (max_llm_failures)"
        else:
            return None
        at = f" at {exc.endpoint}" if exc.endpoint and exc.endpoint not in str(exc) else ""
        return RunHalted(f"model '{model}'{at} {why}; last error: {one_line(exc, last=True)}")


__all__ = ["Budgets", "Spending"]
