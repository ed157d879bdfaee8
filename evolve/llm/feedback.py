"""What a learning model (a bandit ensemble) is told about the children its members wrote."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from evolve.llm.base import LLM
from evolve.records import LLMReply, Program


@runtime_checkable
class LearnsFromOutcomes(Protocol):
    """An LLM (e.g. a bandit ensemble) that wants to know how each child did."""

    def report(self, model: str, improved: float, cost_usd: float) -> None: ...


class Feedback:
    """Remembers which model wrote each iteration's child and at what cost, and reports the
    child's gain over its parent once it is told; nothing for a model that does not learn."""

    def __init__(self, llm: LLM) -> None:
        self._learner = llm if isinstance(llm, LearnsFromOutcomes) else None
        self._calls: dict[int, tuple[str, float]] = {}

    def replied(self, iteration: int, reply: LLMReply) -> None:
        if self._learner is not None:
            self._calls[iteration] = (reply.model, reply.cost_usd)

    def told(self, program: Program, gain: float | None) -> None:
        call = self._calls.pop(program.iteration, None)
        if call is not None and self._learner is not None and program.parent_id is not None:
            self._learner.report(call[0], gain or 0.0, call[1])


__all__ = ["Feedback", "LearnsFromOutcomes"]
