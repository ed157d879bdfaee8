"""The discovery loop's scheduler: ask the strategy, propose, evaluate, tell, in order.

Several proposals are in flight at once, but results are told to the search strategy strictly in
iteration order, and iteration ``i`` is asked for right after iteration ``i - lag`` is told, with
an RNG seeded by ``(seed, i)``. So a seeded run makes the same choices however fast the model or
the sandbox answers, and a resumed run rebuilds exactly the state it stopped in by telling the
strategy the stored programs in order. Model calls are bounded by ``in_flight`` and evaluations
by the evaluator's concurrency, so calls for later iterations overlap evaluations of earlier ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np

from evaluators.base import Evaluator
from evolve.budgets import Budgets
from evolve.config import RunConfig
from evolve.database import Database
from evolve.database.lease import RunLease
from evolve.evaluations import Evaluations
from evolve.initial import restore, start_from
from evolve.liveness import WallClock, heartbeat
from evolve.llm.base import LLM, LLMError
from evolve.llm.feedback import Feedback, LearnsFromOutcomes
from evolve.outcomes import Progress, RunAborted, RunHalted, RunSummary
from evolve.problem import Problem
from evolve.progress import ProgressReport
from evolve.prompts import PromptBuilder
from evolve.proposals import Proposer, build_child, program_id
from evolve.recorder import Recorder
from evolve.records import LLMReply, Program, Status
from evolve.search import SearchStrategy, Selection, StrategyContext, build_strategy
from evolve.steering import Steering, follow_commands

#: How often a running controller marks its run alive and renews its lease in the database.
HEARTBEAT_S = 10.0


class Controller:
    """Runs (or resumes) one discovery run. Built by :func:`evolve.app.build_controller`. Its
    public methods after :meth:`aclose` are what steering changes (``evolve.steering.Steerable``)."""

    def __init__(
        self,
        *,
        run_id: str,
        problem: Problem,
        config: RunConfig,
        db: Database,
        llm: LLM,
        evaluator: Evaluator,
        prompts: PromptBuilder,
        on_progress: Callable[[Progress], None] | None = None,
        lease: RunLease | None = None,
        heartbeat_s: float = HEARTBEAT_S,
        started_at: float | None = None,
        strategy: SearchStrategy | None = None,
    ) -> None:
        self.run_id = run_id
        self.problem = problem
        self.config = config
        self._db = db
        self._llm = llm
        self._feedback = Feedback(llm)  # an ensemble's bandit learns from each child's gain
        self._evaluator = evaluator
        self._on_progress = on_progress
        self._lease = lease
        self._heartbeat_s = heartbeat_s
        #: Why a cancellation of :meth:`run` happened (Ctrl-C unless told otherwise).
        self.interrupt_reason = "interrupted by the user (Ctrl-C)"
        #: Whether the run got past its start: the initial program evaluated and checked.
        self.started = False
        self.strategy = strategy or build_strategy(
            StrategyContext(problem, config.search, config.llm.mode_weights, config.target_score)
        )
        concurrency = config.evaluator.resolved_concurrency()
        in_flight = config.search.in_flight or 2 * concurrency
        self._k = config.search.lag or in_flight + 2 * concurrency
        self._max_iter = config.max_iterations
        self._recorder = Recorder(db, run_id, llm.name)
        self._budgets = Budgets(config, llm.name)
        self._report = ProgressReport(run_id, problem.spec.metrics.primary, self.strategy, self._budgets.spent)
        self._evals = Evaluations(evaluator, problem, self._recorder)
        self._proposer = Proposer(run_id, llm, prompts, self._recorder, in_flight=in_flight,
                                  on_reply=self._on_reply, on_llm_error=self._on_llm_error)
        # max_wall_time counts from the command's start (time.monotonic()) when given.
        begun = started_at if started_at is not None else self._budgets.spent.started
        self._clock = WallClock(self.spawn, begun, self.stop)
        self._done: dict[int, Program] = {}
        self._pending: dict[int, Program] = {}
        self._next_apply = 0
        self._scheduled = 0
        self._stop_reason: str | None = None
        self._halt: RunHalted | None = None
        self._finished = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._tg: asyncio.TaskGroup | None = None
        self._accepting = False
        self.paused = False  # by a command: no new iteration starts

    async def run(self) -> RunSummary:
        """Run until ``max_iterations`` are applied, a budget stops it, or it is cancelled."""
        with self._recorder.session(lambda: self.interrupt_reason):
            self._done, self._pending = await restore(self._recorder, self._budgets, self._evals)
            self._done[0] = await start_from(self.problem, self._evals, self._recorder, self._done, self._pending)
            self.started = True
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                self._accepting = True
                self._clock.start(self.config.max_wall_time)
                self.spawn(heartbeat(self._recorder, self._lease, self._heartbeat_s, self._halt_run))
                self.spawn(follow_commands(self._recorder, self._db.commands(), Steering(self, self._recorder).apply))
                if (spent := self._budgets.exceeded()) is not None:  # a resumed run's budget
                    self.stop(spent)
                try:
                    self._apply_ready()
                    await self._finished.wait()
                finally:
                    self._accepting = False  # the group is closing: start nothing new
                for task in list(self._tasks):
                    task.cancel()
            if self._halt is not None:
                raise self._halt
            summary = self._report.summary(self._stop_reason, self._max_iter, self.applied)
            await self._recorder.status(summary.status, summary.reason)
            return summary

    async def aclose(self) -> None:
        """Release the model clients and the sandbox workers."""
        try:
            await self._llm.aclose()
        finally:
            await self._evaluator.aclose()

    # -- scheduling (and what a steering command may change) -------------------------------------
    @property
    def applied(self) -> int:
        """Iterations told to the strategy so far (the initial program not counted)."""
        return max(0, self._next_apply - 1)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
        """Run ``coro`` as one of the run's tasks; closed unstarted once the run is ending."""
        if self._tg is None or not self._accepting:
            coro.close()
            return None
        task = self._tg.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def schedule(self) -> None:
        """After iteration j is told, iterations up to j + lag may start."""
        limit = min(self._next_apply - 1 + self._k, self._max_iter)
        while self._scheduled < limit and self._stop_reason is None and not self.paused:
            self._scheduled += 1
            i = self._scheduled
            if i in self._done:
                continue
            if i in self._pending:
                self.spawn(self.evaluate(self._pending.pop(i)))
            else:
                self.spawn(self._iteration(self._select(i)))

    def claim_iteration(self) -> int:
        """The next iteration, taken for a program of the user's own (ValueError: none free)."""
        i = self._scheduled + 1
        if i > self._max_iter or i in self._done or i in self._pending:
            raise ValueError(f"no free iteration to inject into (next {i}, max_iterations {self._max_iter})")
        self._scheduled = i
        return i

    def reconfigure(self, config: RunConfig, *, restart_clock: bool) -> None:
        """Run on with new limits; what was spent stays counted."""
        self.config = config
        self._max_iter = config.max_iterations
        if restart_clock:
            self._clock.start(config.max_wall_time)
        if (spent := self._budgets.reconfigure(config)) is not None:
            self.stop(spent)
        if self._next_apply > self._max_iter:
            self._finished.set()
        self.schedule()

    def stop(self, reason: str) -> None:
        """End the run cleanly: nothing new starts, the iterations in flight are cancelled."""
        self._stop_reason = reason
        self._finished.set()

    def _select(self, i: int) -> Selection:
        """Every random decision of iteration ``i``, from ``(seed, i)`` and the strategy only."""
        return self.strategy.ask(i, np.random.default_rng([self.config.seed, i]))

    async def _iteration(self, sel: Selection) -> None:
        child = await self._proposer.propose(sel)
        if child.status is Status.PENDING:
            await self.evaluate(child)
        else:
            self._complete(child)

    async def evaluate(self, program: Program) -> None:
        """Evaluate a recorded program; it is told to the strategy in its turn."""
        self._complete(await self._evals.evaluate(program))

    def _complete(self, program: Program) -> None:
        self._done[program.iteration] = program
        self._apply_ready()

    # -- ordered application ------------------------------------------------------------------------
    def _apply_ready(self) -> None:
        while self._next_apply in self._done:
            self._apply(self._done.pop(self._next_apply))
            self._next_apply += 1
            self.schedule()
        if self._next_apply > self._max_iter:
            self._finished.set()
        if self._on_progress is not None:
            self._on_progress(self._report.progress(self.applied, self._max_iter, len(self._tasks)))

    def _apply(self, p: Program) -> None:
        self._budgets.count(p)
        self._report.told(p)
        applied = self.strategy.tell(p)
        if applied.stop_reason is not None and self._stop_reason is None:
            self.stop(applied.stop_reason)
        self._feedback.told(p, applied.gain)
        if applied.migrations:
            self.spawn(self._recorder.migrations([(p.iteration, *move) for move in applied.migrations]))

    # -- budgets and halts --------------------------------------------------------------------------
    def _on_reply(self, iteration: int, reply: LLMReply) -> None:
        self._feedback.replied(iteration, reply)
        if (spent := self._budgets.charge(reply)) is not None and self._stop_reason is None:
            self.stop(spent)

    def _on_llm_error(self, exc: LLMError) -> None:
        if (halt := self._budgets.llm_failed(exc)) is not None:
            self._halt_run(halt)

    def _halt_run(self, error: RunHalted) -> None:
        """Stop now, with an error the caller sees (exit non-zero); the run stays resumable."""
        if self._halt is None:
            self._halt = error
            self.stop(str(error))


__all__ = ["Controller", "LearnsFromOutcomes", "Progress", "RunAborted", "RunHalted", "RunSummary", "Selection",
           "build_child", "program_id"]
