"""The interface every evaluation backend implements."""

from __future__ import annotations

from typing import Protocol

from evolve.records import EvalResult


class Evaluator(Protocol):
    """Runs one candidate program in a sandbox and scores its output with the trusted scorer.

    ``evaluate`` never raises for anything the candidate does: every failure becomes an
    :class:`EvalResult` with a status and the error text. Cancelling the call kills the
    candidate's whole process tree.
    """

    async def evaluate(self, code: str) -> EvalResult: ...

    async def aclose(self) -> None:
        """Release workers and kill anything still running."""
        ...
