"""The local evaluator: candidates in sandboxed child processes, scored by a trusted scorer.

``evaluate(code)`` runs the candidate in a fresh working directory under the problem's limits,
decodes its JSON output and has the problem's scorer (in a separate persistent worker process)
turn it into metrics. A problem with ``stages`` is a cascade: each stage runs and is scored in
turn, and a candidate that fails a stage (or misses its threshold) stops there, its error naming
the stage. Every failure becomes an :class:`EvalResult` with a status and an
:class:`ErrorInfo`; nothing the candidate does makes ``evaluate`` raise.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from evaluators.child import CHANNEL_FD
from evaluators.environment import candidate_env
from evaluators.interactive import EpisodePool
from evaluators.isolation import Isolation
from evaluators.outcome import RunOutcome
from evaluators.sandbox import RunSpec, run_candidate
from evaluators.scorer import ScoreOutcome, ScorerPool
from evaluators.slots import PoolSettings, SlotPool, hidden_paths
from evolve.config import EvaluatorConfig
from evolve.problem import Problem
from evolve.records import ErrorInfo, EvalResult, Status


@dataclass(frozen=True)
class _Stage:
    name: str | None  # None: the single run of a problem without a cascade
    run: RunSpec
    threshold: float | None
    metric: str


def plan_stages(problem: Problem) -> list[_Stage]:
    """The runs a candidate goes through: the cascade's stages, or one run."""
    spec = problem.spec
    limits = spec.limits

    channel = {"channel_fd": CHANNEL_FD} if spec.interactive else {}

    def run_spec(kwargs: dict[str, object], timeout_s: float | None) -> RunSpec:
        wall = timeout_s or limits.timeout_s
        return RunSpec(
            entry=spec.entry,
            entry_kwargs={**spec.entry_kwargs, **kwargs, **channel},
            timeout_s=wall,
            cpu_s=min(limits.cpu_time_s or wall, wall),
            memory_mb=limits.memory_mb,
            max_processes=limits.max_processes,
            max_file_mb=limits.max_file_mb,
            max_output_kb=limits.max_output_kb,
            max_report_bytes=limits.max_report_kb * 1024,
        )

    primary = spec.metrics.primary
    if not spec.stages:
        return [_Stage(None, run_spec({}, None), None, primary)]
    return [
        _Stage(s.name, run_spec(s.entry_kwargs, s.timeout_s), s.threshold, s.metric or primary)
        for s in spec.stages
    ]


class LocalEvaluator:
    """Evaluate candidates for one problem on this machine.

    The constructor only records its arguments; the sandbox is probed and worker processes
    start on first use, and everything ends with :meth:`aclose`.
    """

    def __init__(self, problem: Problem, config: EvaluatorConfig) -> None:
        self._problem = problem
        self._stages = plan_stages(problem)
        concurrency = config.resolved_concurrency()
        self._slots = SlotPool(
            PoolSettings(
                size=concurrency,
                python=config.python or sys.executable,
                isolation=config.isolation,
                warm=config.mode == "warm",
                imports=problem.spec.imports,
                passthrough=problem.spec.env,
                hidden=hidden_paths(problem.root),
                max_processes=problem.spec.limits.max_processes,
                bwrap=config.bwrap,
                memory_mb=problem.spec.limits.memory_mb,
                cpu_cores=problem.spec.limits.cpu_cores,
                disk_mb=problem.spec.limits.max_disk_mb,
                max_files=problem.spec.limits.max_files,
            )
        )
        self._scorer = ScorerPool(
            problem.scorer_path,
            problem.scorer_function,
            problem.spec.metrics.primary,
            size=concurrency,
            timeout_s=config.scorer_timeout_s,
            env=scorer_env(problem),
        )
        self._episodes = (
            EpisodePool(
                problem.scorer_path,
                problem.scorer_function,
                problem.spec.metrics.primary,
                size=concurrency,
                timeout_s=config.scorer_timeout_s,
                env=scorer_env(problem),
            )
            if problem.spec.interactive
            else None
        )

    @property
    def isolation(self) -> Isolation | None:
        """The sandbox in use, once the first evaluation has set it up."""
        return self._slots.isolation

    @property
    def candidate_uid(self) -> int | None:
        """The uid candidates run as, or None when they run as this process's own user."""
        return self._slots.candidate_uid

    async def evaluate(self, code: str) -> EvalResult:
        """Run and score one candidate program; never raises for anything the candidate does.

        Raises:
            UserError: the sandbox the config demands is unavailable, or the scorer cannot load.
        """
        start = time.monotonic()
        result = await self._cascade(code)
        return result.model_copy(update={"wall_time_s": time.monotonic() - start})

    async def _cascade(self, code: str) -> EvalResult:
        verdict = ScoreOutcome(Status.EVALUATED)
        outcome = RunOutcome(Status.EVALUATED)
        for stage in self._stages:
            outcome, verdict = await self._run_and_score(code, stage)
            if outcome.status is not Status.EVALUATED:
                return _failure(outcome.status, outcome.message, stage.name or "run", outcome)
            if verdict.status is not Status.EVALUATED:
                return _failure(verdict.status, verdict.message, stage.name or "score", outcome)
            missed = self._missed_threshold(stage, verdict)
            if missed:
                return _failure(Status.REJECTED, missed, stage.name, outcome, verdict.feedback)
        return EvalResult(
            status=Status.EVALUATED,
            metrics=verdict.metrics,
            feedback=verdict.feedback,
            stdout_tail=outcome.output_text,
        )

    async def _run_and_score(self, code: str, stage: _Stage) -> tuple[RunOutcome, ScoreOutcome]:
        """Run the stage, then score its output; or, for an interactive problem, run it against
        an episode of the problem's environment, whose verdict is the score."""
        kwargs = dict(stage.run.entry_kwargs)
        if self._episodes is not None:
            return await self._episodes.play(
                lambda fd: self._run(code, stage.run, fd), stage.name, kwargs, stage.run.timeout_s
            )
        outcome = await self._run(code, stage.run)
        if outcome.status is not Status.EVALUATED:
            return outcome, ScoreOutcome(outcome.status)
        return outcome, await self._scorer.score(outcome.output, stage.name, kwargs)

    def _missed_threshold(self, stage: _Stage, verdict: ScoreOutcome) -> str:
        if stage.threshold is None:
            return ""
        value = verdict.metrics.get(stage.metric)
        if value is None:
            return f"stage {stage.name!r}: the scorer gave no metric {stage.metric!r}"
        passed = value >= stage.threshold if self._problem.maximize else value <= stage.threshold
        if passed:
            return ""
        word = "below" if self._problem.maximize else "above"
        return (
            f"stage {stage.name!r}: {stage.metric} = {value:g} is {word} the threshold "
            f"{stage.threshold:g} needed to go on"
        )

    async def _run(self, code: str, spec: RunSpec, channel_fd: int | None = None) -> RunOutcome:
        """One run in a sandbox slot, held for the run only: the next candidate may start in it
        while this one's output is being scored."""
        slot = await self._slots.acquire()
        try:
            assert slot.launcher is not None
            oom_kills = slot.oom_kills()
            outcome = await run_candidate(
                slot.launcher, code, spec, slot.env, slot.confinement, channel_fd
            )
            if outcome.status is not Status.EVALUATED and slot.oom_kills() > oom_kills:
                message = (
                    f"the program's processes together exceeded the memory limit of "
                    f"{spec.memory_mb} MB"
                )
                outcome = replace(outcome, status=Status.MEMORY, message=message)
            return outcome
        finally:
            self._slots.release(slot)

    async def aclose(self) -> None:
        """Stop templates and scorer workers; kill anything left in any slot."""
        await self._slots.aclose()
        await self._scorer.aclose()
        if self._episodes is not None:
            await self._episodes.aclose()


def scorer_env(problem: Problem) -> dict[str, str]:
    """The scorer workers' environment: minimal, plus the variables the problem lists."""
    env = candidate_env(Path(os.environ.get("HOME", "/")), problem.spec.env, os.environ)
    del env["TMPDIR"]
    return env


def _failure(
    status: Status, message: str, stage: str | None, outcome: RunOutcome, feedback: str = ""
) -> EvalResult:
    return EvalResult(
        status=status,
        error=ErrorInfo(kind=status, message=message, stage=stage),
        feedback=feedback,
        stdout_tail=outcome.output_text,
    )
