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
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from evaluators.base import Evaluator
from evolve.budgets import Budgets
from evolve.codehash import code_hash
from evolve.config import RunConfig
from evolve.database import Database
from evolve.database.commands import Command
from evolve.database.lease import RunLease
from evolve.errors import UserError, one_line
from evolve.evaluations import Evaluations
from evolve.initial import evaluate_initial
from evolve.liveness import heartbeat, wall_clock
from evolve.llm.base import LLM, LLMError
from evolve.outcomes import Progress, RunAborted, RunHalted, RunSummary
from evolve.problem import Problem
from evolve.prompts import PromptBuilder
from evolve.proposals import Proposer, build_child, program_id
from evolve.recorder import Recorder
from evolve.records import LLMReply, Program, Status
from evolve.search import SearchStrategy, Selection, StrategyContext, build_strategy
from evolve.steering import follow_commands

#: How often a running controller marks its run alive and renews its lease in the database.
HEARTBEAT_S = 10.0


@runtime_checkable
class LearnsFromOutcomes(Protocol):
    """An LLM (e.g. a bandit ensemble) that wants to know how each child did."""

    def report(self, model: str, improved: float, cost_usd: float) -> None: ...


class Controller:
    """Runs (or resumes) one discovery run. Built by :func:`evolve.app.build_controller`."""

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
        # The ensemble's bandit learns from each child's gain; checked once.
        self._learner = llm if isinstance(llm, LearnsFromOutcomes) else None
        self._evaluator = evaluator
        self._on_progress = on_progress
        self._lease = lease
        self._heartbeat_s = heartbeat_s
        self._started_at = started_at  # time.monotonic() when the command began, for max_wall_time
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
        self._evals = Evaluations(evaluator, problem, self._recorder)
        self._proposer = Proposer(run_id, llm, prompts, self._recorder, in_flight=in_flight,
                                  on_reply=self._on_reply, on_llm_error=self._on_llm_error)
        self._done: dict[int, Program] = {}
        self._pending: dict[int, Program] = {}
        self._models: dict[int, tuple[str, float]] = {}
        self._next_apply = 0
        self._scheduled = 0
        self._stop_reason: str | None = None
        self._halt: RunHalted | None = None
        self._finished = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._tg: asyncio.TaskGroup | None = None
        self._accepting = False
        self._initial_score: float | None = None
        self._paused = False  # by a command: no new iteration starts
        self._clock: asyncio.Task[None] | None = None

    # -- public --------------------------------------------------------------------------------
    async def run(self) -> RunSummary:
        """Run until ``max_iterations`` are applied, a budget stops it, or it is cancelled."""
        self._recorder.open()
        try:
            await self._load()
            first = self._done.get(0)
            if first is None:
                self._done[0] = await evaluate_initial(
                    self.problem, self.run_id, self._evals, self._recorder, self._pending.pop(0, None)
                )
            elif first.status is not Status.EVALUATED:
                raise UserError(
                    f"run '{self.run_id}' cannot go on: its initial program failed ({first.status.value}: "
                    f"{one_line(first.error.message if first.error else '', last=True)}); "
                    "fix the problem and start a new run"
                )
            self.started = True
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                self._accepting = True
                self._start_clock()
                self._spawn(heartbeat(self._recorder, self._lease, self._heartbeat_s, self._halt_run))
                self._spawn(follow_commands(self._recorder, self._db.commands(), self._command))
                if (spent := self._budgets.exceeded()) is not None:  # a resumed run's budget
                    self._stop(spent)
                try:
                    self._apply_ready()
                    if self._next_apply > self._max_iter:
                        self._finished.set()
                    await self._finished.wait()
                finally:
                    self._accepting = False  # the group is closing: start nothing new
                for task in list(self._tasks):
                    task.cancel()
            if self._halt is not None:
                raise self._halt
            status = "finished" if self._stop_reason is None else "stopped"
            reason = self._stop_reason or f"{self._max_iter} iterations"
            await self._recorder.status(status, reason)
            return self._summary(status, reason)
        except (asyncio.CancelledError, KeyboardInterrupt):
            self._recorder.end("interrupted", self.interrupt_reason)
            raise
        except BaseException as exc:
            err = _first_error(exc)
            self._recorder.end("stopped" if isinstance(err, RunHalted | UserError) else "failed", str(err))
            if err is not exc:
                raise err from exc
            raise
        finally:
            self._recorder.close()

    async def aclose(self) -> None:
        """Release the model clients and the sandbox workers."""
        try:
            await self._llm.aclose()
        finally:
            await self._evaluator.aclose()

    # -- loading and the initial program ------------------------------------------------------------
    async def _load(self) -> None:
        spent = self._budgets.spent
        for usage in await self._recorder.call(self._db.llm_usage, self.run_id):
            spent.cost_usd += float(usage["cost_usd"] or 0.0)
            spent.tokens += int(usage["input_tokens"] or 0) + int(usage["output_tokens"] or 0)
        for p in await self._recorder.call(self._db.programs, self.run_id):
            (self._pending if p.status is Status.PENDING else self._done)[p.iteration] = p
            self._evals.remember(p)

    # -- scheduling ---------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> asyncio.Task[None] | None:
        if self._tg is None or not self._accepting:
            coro.close()
            return None
        task = self._tg.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _schedule(self) -> None:
        """After iteration j is told, iterations up to j + lag may start."""
        limit = min(self._next_apply - 1 + self._k, self._max_iter)
        while self._scheduled < limit and self._stop_reason is None and not self._paused:
            self._scheduled += 1
            i = self._scheduled
            if i in self._done:
                continue
            if i in self._pending:
                self._spawn(self._evaluate(self._pending.pop(i)))
            else:
                self._spawn(self._iteration(self._select(i)))

    def _select(self, i: int) -> Selection:
        """Every random decision of iteration ``i``, from ``(seed, i)`` and the strategy only."""
        return self.strategy.ask(i, np.random.default_rng([self.config.seed, i]))

    async def _iteration(self, sel: Selection) -> None:
        child = await self._proposer.propose(sel)
        if child.status is Status.PENDING:
            await self._evaluate(child)
        else:
            self._complete(child)

    async def _evaluate(self, program: Program) -> None:
        self._complete(await self._evals.evaluate(program))

    def _complete(self, program: Program) -> None:
        self._done[program.iteration] = program
        self._apply_ready()

    # -- ordered application ------------------------------------------------------------------------
    def _apply_ready(self) -> None:
        while self._next_apply in self._done:
            self._apply(self._done.pop(self._next_apply))
            self._next_apply += 1
            if self._next_apply > self._max_iter:
                self._finished.set()
            self._schedule()
        self._report_progress()

    def _apply(self, p: Program) -> None:
        spent = self._budgets.spent
        if p.iteration > 0 and p.status is not Status.DUPLICATE:
            spent.evaluations += int(p.code is not None)
        if p.status.is_failure:
            spent.failures[p.status.value] += 1
        if p.iteration == 0:
            self._initial_score = p.score(self.problem.spec.metrics.primary)
        applied = self.strategy.tell(p)
        if applied.stop_reason is not None and self._stop_reason is None:
            self._stop(applied.stop_reason)
        model = self._models.pop(p.iteration, None)
        if model is not None and self._learner is not None and p.parent_id is not None:
            self._learner.report(model[0], applied.gain or 0.0, model[1])
        if applied.migrations:
            self._spawn(self._recorder.migrations([(p.iteration, *move) for move in applied.migrations]))

    # -- commands (evolve ctl, the web UI) --------------------------------------------------------
    def _command(self, command: Command) -> str:
        """Act on a steering command; the outcome recorded with it (ValueError: refused)."""
        if command.kind == "pause":
            self._paused = True
            return "paused: no new iteration starts; those in flight finish"
        if command.kind == "resume":
            was, self._paused = self._paused, False
            self._schedule()
            return "resumed" if was else "not paused: nothing to resume"
        if command.kind == "stop":
            self._stop("stopped by a command (evolve ctl)")
            return "stopping: the run ends when the iterations in flight are cancelled"
        if command.kind == "budget":
            return self._rebudget(command.args)
        return self._inject(str(command.args["code"]))

    def _rebudget(self, limits: dict[str, Any]) -> str:
        done = self._next_apply - 1
        if limits.get("max_iterations", done) < done:
            raise ValueError(f"max_iterations {limits['max_iterations']} is below the {done} iterations done")
        self.config = self.config.model_copy(update=limits)
        self._max_iter = self.config.max_iterations
        self._budgets.reconfigure(self.config)
        if "max_wall_time" in limits:
            self._start_clock()
        self._spawn(self._recorder.call(self._db.set_run_status, self.run_id, "running", None,
                                        self.config.model_dump(mode="json")))  # a resume keeps it
        if (spent := self._budgets.exceeded()) is not None:
            self._stop(spent)
        if self._next_apply > self._max_iter:
            self._finished.set()
        self._schedule()
        return "budget now " + ", ".join(f"{k}={v}" for k, v in limits.items())

    def _inject(self, code: str) -> str:
        """A program of the user's own takes the next iteration: evaluated in the sandbox and told
        to the strategy like any child (no parent), so resume replays it like any other."""
        i = self._scheduled + 1
        if i > self._max_iter or i in self._done or i in self._pending:
            raise ValueError(f"no free iteration to inject into (next {i}, max_iterations {self._max_iter})")
        self._scheduled = i
        program = Program(
            id=program_id(self.run_id, i), run_id=self.run_id, iteration=i, parent_id=None,
            island=(i - 1) % self.config.search.islands, generation=0, code=code,
            code_hash=code_hash(code), status=Status.PENDING, mode="inject",
        )
        self._spawn(self._injected(program))
        return f"injected as iteration {i} (program {program.id})"

    async def _injected(self, program: Program) -> None:
        await self._recorder.program(program)
        await self._evaluate(program)

    def _start_clock(self) -> None:
        """(Re)start the wall-time limit, counted from the command's start."""
        if self._clock is not None:
            self._clock.cancel()
            self._clock = None
        if self.config.max_wall_time is not None:
            begun = self._started_at if self._started_at is not None else self._budgets.spent.started
            self._clock = self._spawn(wall_clock(self.config.max_wall_time, begun, self._stop))

    # -- budgets, stops, heartbeat, progress ----------------------------------------------------
    def _on_reply(self, iteration: int, reply: LLMReply) -> None:
        self._models[iteration] = (reply.model, reply.cost_usd)
        if (spent := self._budgets.charge(reply)) is not None and self._stop_reason is None:
            self._stop(spent)

    def _on_llm_error(self, exc: LLMError) -> None:
        if (halt := self._budgets.llm_failed(exc)) is not None:
            self._halt_run(halt)

    def _stop(self, reason: str) -> None:
        self._stop_reason = reason
        self._finished.set()

    def _halt_run(self, error: RunHalted) -> None:
        """Stop now, with an error the caller sees (exit non-zero); the run stays resumable."""
        if self._halt is None:
            self._halt = error
            self._stop(str(error))

    def _report_progress(self) -> None:
        if self._on_progress is None:
            return
        spent = self._budgets.spent
        best = self.strategy.best
        elapsed = time.monotonic() - spent.started
        self._on_progress(
            Progress(
                run_id=self.run_id,
                applied=max(0, self._next_apply - 1),
                max_iterations=self._max_iter,
                best_score=best.score(self.problem.spec.metrics.primary) if best else None,
                initial_score=self._initial_score,
                evaluations=spent.evaluations,
                evals_per_s=spent.evaluations / elapsed if elapsed > 0 else 0.0,
                failures=dict(spent.failures),
                coverage=self.strategy.coverage(),
                in_flight=len(self._tasks),
                elapsed_s=elapsed,
                cost_usd=spent.cost_usd,
            )
        )

    def _summary(self, status: str, reason: str) -> RunSummary:
        return RunSummary(
            run_id=self.run_id,
            status=status,
            reason=reason,
            best=self.strategy.best,
            initial_score=self._initial_score,
            iterations=max(0, self._next_apply - 1),
            failures=dict(self._budgets.spent.failures),
            front=self.strategy.front(),
        )


def _first_error(exc: BaseException) -> BaseException:
    """The first leaf of an exception group (TaskGroup wraps a task's failure)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


__all__ = [
    "Controller",
    "LearnsFromOutcomes",
    "Progress",
    "RunAborted",
    "RunHalted",
    "RunSummary",
    "Selection",
    "build_child",
    "program_id",
]
