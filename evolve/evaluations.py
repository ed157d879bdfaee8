"""Evaluate each distinct program once: a repeat of the same normalized code reuses the result."""

from __future__ import annotations

import asyncio
import time

from evaluators.base import Evaluator
from evolve.archive import cell_of, compute_features
from evolve.problem import Problem
from evolve.recorder import Recorder
from evolve.records import EvalResult, Program, Status


class Evaluations:
    """The evaluator behind a duplicate cache keyed by code hash; records every result."""

    def __init__(self, evaluator: Evaluator, problem: Problem, recorder: Recorder) -> None:
        self._evaluator = evaluator
        self._problem = problem
        self._recorder = recorder
        self._cache: dict[str, asyncio.Future[EvalResult]] = {}

    def remember(self, p: Program) -> None:
        """Seed the cache with a stored, finished program (a resumed run)."""
        if p.code_hash is None or not p.status.is_terminal or p.status is Status.DUPLICATE:
            return
        fut: asyncio.Future[EvalResult] = asyncio.get_running_loop().create_future()
        fut.set_result(EvalResult(status=p.status, metrics=dict(p.metrics), feedback=p.feedback, error=p.error))
        self._cache.setdefault(p.code_hash, fut)

    async def evaluate(self, program: Program) -> Program:
        """Evaluate once per normalized code; a repeat waits for (or reuses) the first result."""
        assert program.code is not None and program.code_hash is not None
        t0 = time.monotonic()
        existing = self._cache.get(program.code_hash)
        if existing is None:
            fut: asyncio.Future[EvalResult] = asyncio.get_running_loop().create_future()
            self._cache[program.code_hash] = fut
            try:
                result = await self._evaluator.evaluate(program.code)
            except BaseException:
                del self._cache[program.code_hash]
                fut.cancel()
                raise
            fut.set_result(result)
        else:
            result = await asyncio.shield(existing)
        specs = self._problem.spec.features
        features = compute_features(specs, result.metrics, program.code) if result.ok else {}
        finished = program.model_copy(
            update={
                "status": Status.DUPLICATE if existing is not None else result.status,
                "metrics": dict(result.metrics),
                "features": features,
                "cell": cell_of(specs, features) if result.ok else None,
                "error": result.error,
                "feedback": result.feedback,
                "timings": {**program.timings, "eval_s": time.monotonic() - t0, "sandbox_s": result.wall_time_s},
            }
        )
        score = finished.score(self._problem.spec.metrics.primary)
        await self._recorder.finished(finished, stdout_tail=result.stdout_tail, score=score)
        return finished


__all__ = ["Evaluations"]
