"""The local evaluator: candidates in sandboxed child processes, scored by a trusted scorer.

``evaluate(code)`` runs the candidate in a fresh working directory under the problem's limits,
decodes its JSON output and has the problem's scorer (in a separate persistent worker process)
turn it into metrics. Every failure becomes an :class:`EvalResult` with a status and an
:class:`ErrorInfo`; nothing the candidate does makes ``evaluate`` raise.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from evaluators.cold import ColdLauncher
from evaluators.environment import candidate_env
from evaluators.outcome import RunOutcome
from evaluators.sandbox import Launcher, RunSpec, run_candidate
from evaluators.scorer import ScorerPool
from evolve.config import EvaluatorConfig
from evolve.problem import Problem
from evolve.records import ErrorInfo, EvalResult, Status

#: How long one call of the trusted scorer may take.
SCORER_TIMEOUT_S = 60.0


class LocalEvaluator:
    """Evaluate candidates for one problem on this machine.

    The constructor only records its arguments; worker processes start on first use and end
    with :meth:`aclose`.
    """

    def __init__(self, problem: Problem, config: EvaluatorConfig) -> None:
        self._problem = problem
        self._config = config
        self._concurrency = config.resolved_concurrency()
        self._semaphore: asyncio.Semaphore | None = None
        self._scorer: ScorerPool | None = None
        self._launcher: Launcher | None = None

    def _ensure_started(self) -> tuple[asyncio.Semaphore, ScorerPool, Launcher]:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self._concurrency)
        if self._scorer is None:
            self._scorer = ScorerPool(
                self._problem.scorer_path,
                self._problem.scorer_function,
                self._problem.spec.metrics.primary,
                size=self._concurrency,
                timeout_s=SCORER_TIMEOUT_S,
            )
        if self._launcher is None:
            self._launcher = ColdLauncher(self._config.python or sys.executable)
        return self._semaphore, self._scorer, self._launcher

    def _run_spec(self) -> RunSpec:
        spec = self._problem.spec
        limits = spec.limits
        return RunSpec(
            entry=spec.entry,
            entry_kwargs=spec.entry_kwargs,
            timeout_s=limits.timeout_s,
            cpu_s=limits.cpu_time_s or limits.timeout_s,
            memory_mb=limits.memory_mb,
            max_processes=limits.max_processes,
            max_file_mb=limits.max_file_mb,
            max_output_kb=limits.max_output_kb,
        )

    async def evaluate(self, code: str) -> EvalResult:
        """Run and score one candidate program; never raises for anything the candidate does."""
        semaphore, scorer, launcher = self._ensure_started()
        async with semaphore:
            start = time.monotonic()
            run_spec = self._run_spec()
            outcome = await self._run(launcher, code, run_spec)
            if outcome.status is not Status.EVALUATED:
                return _failure(outcome, "run", time.monotonic() - start)
            verdict = await scorer.score(outcome.output, None, dict(run_spec.entry_kwargs))
            elapsed = time.monotonic() - start
            if verdict.status is not Status.EVALUATED:
                return EvalResult(
                    status=verdict.status,
                    error=ErrorInfo(kind=verdict.status, message=verdict.message, stage="score"),
                    stdout_tail=outcome.output_text,
                    wall_time_s=elapsed,
                )
            return EvalResult(
                status=Status.EVALUATED,
                metrics=verdict.metrics,
                feedback=verdict.feedback,
                stdout_tail=outcome.output_text,
                wall_time_s=elapsed,
            )

    async def _run(self, launcher: Launcher, code: str, run_spec: RunSpec) -> RunOutcome:
        workdir = Path(tempfile.mkdtemp(prefix="evolve-cand-"))
        try:
            env = candidate_env(workdir, self._problem.spec.env, os.environ)
            return await run_candidate(launcher, code, run_spec, workdir, env)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    async def aclose(self) -> None:
        """Stop the scorer workers; candidate processes never outlive their evaluate()."""
        if self._scorer is not None:
            await self._scorer.aclose()
            self._scorer = None


def _failure(outcome: RunOutcome, stage: str, elapsed: float) -> EvalResult:
    return EvalResult(
        status=outcome.status,
        error=ErrorInfo(kind=outcome.status, message=outcome.message, stage=stage),
        stdout_tail=outcome.output_text,
        wall_time_s=elapsed,
    )
