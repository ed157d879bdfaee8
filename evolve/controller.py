"""The discovery loop: select, prompt, propose, evaluate, record, archive.

Several proposals are in flight at once, but results enter the archive strictly in iteration
order, and the parent of iteration ``i`` is chosen right after iteration ``i - lag`` is applied,
with an RNG seeded by ``(seed, i)``. So a seeded run makes the same choices however fast the
model or the sandbox answers, and a resumed run rebuilds exactly the state it stopped in by
replaying the database in order. Model calls are bounded by ``in_flight`` and evaluations by the
evaluator's concurrency, so calls for later iterations overlap evaluations of earlier ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from evaluators.base import Evaluator
from evolve.archive import Archive, Elite, cell_of, compute_features, migration_plan
from evolve.codehash import code_hash
from evolve.config import RunConfig
from evolve.database import Database
from evolve.database.lease import LeaseLost, RunLease
from evolve.diffs import (
    DiffError,
    apply_edits,
    extract_program,
    merge_rewrite,
    parse_edits,
    unified_diff,
)
from evolve.errors import UserError, one_line
from evolve.llm.base import LLM, LLMError
from evolve.problem import Problem
from evolve.prompts import PromptBuilder, PromptContext
from evolve.records import (
    ErrorInfo,
    EvalResult,
    LLMReply,
    LLMRequest,
    Message,
    Program,
    RetriedFailure,
    Status,
)
from evolve.selection import choose_mode, select_inspirations, select_parent

log = logging.getLogger(__name__)

#: How often a running controller marks its run alive and renews its lease in the database.
HEARTBEAT_S = 10.0
#: Replies shorter than this are parsed on the event loop (faster than a thread hand-over).
_INLINE_PARSE_CHARS = 16_384
T = TypeVar("T")


class RunAborted(Exception):
    """The run cannot go on (e.g. the model rejects the key); the message says why."""


class RunHalted(RunAborted):
    """The run stopped and can be resumed once the cause is fixed (a model endpoint that keeps
    failing, a lease taken over); the run is recorded as ``stopped`` with this message."""


@runtime_checkable
class LearnsFromOutcomes(Protocol):
    """An LLM (e.g. a bandit ensemble) that wants to know how each child did."""

    def report(self, model: str, improved: float, cost_usd: float) -> None: ...


@dataclass(frozen=True)
class Progress:
    """A snapshot for live displays."""

    run_id: str
    applied: int
    max_iterations: int
    best_score: float | None
    initial_score: float | None
    evaluations: int
    evals_per_s: float
    failures: dict[str, int]
    coverage: list[float]
    in_flight: int
    elapsed_s: float
    cost_usd: float


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    status: str
    reason: str
    best: Program | None
    initial_score: float | None
    iterations: int
    failures: dict[str, int]


@dataclass(frozen=True)
class Selection:
    """The decisions made for one iteration before any I/O."""

    iteration: int
    island: int
    parent: Program
    mode: str
    top: tuple[Program, ...]
    diverse: tuple[Program, ...]
    other: Program | None
    failures: tuple[ErrorInfo, ...]
    seed: int


@dataclass(frozen=True)
class _Call:
    """A finished model call that is not written yet."""

    messages: Sequence[Message]
    mode: str
    reply: LLMReply | None = None
    error: tuple[str, str] | None = None
    retried: tuple[RetriedFailure, ...] = ()  # failed attempts retried before it ended


@dataclass
class _Stats:
    evaluations: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    cost_usd: float = 0.0
    tokens: int = 0
    started: float = field(default_factory=time.monotonic)


def program_id(run_id: str, iteration: int) -> str:
    """Deterministic id: the same run and iteration always name the same program."""
    return hashlib.sha1(f"{run_id}:{iteration}".encode()).hexdigest()[:12]


def build_child(parent_code: str, reply_text: str, mode: str) -> str:
    """Turn a reply into the child's code; raises DiffError with a reason for the next prompt."""
    if mode == "diff":
        return apply_edits(parent_code, parse_edits(reply_text))
    return merge_rewrite(parent_code, extract_program(reply_text))


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
    ) -> None:
        self.run_id = run_id
        self.problem = problem
        self.config = config
        self._db = db
        self._llm = llm
        # The ensemble's bandit learns from each child's gain; checked once (a runtime
        # Protocol check costs tens of microseconds).
        self._learner = llm if isinstance(llm, LearnsFromOutcomes) else None
        self._evaluator = evaluator
        self._prompts = prompts
        self._on_progress = on_progress
        self._lease = lease
        self._heartbeat_s = heartbeat_s
        self._started_at = started_at  # time.monotonic() when the command began, for max_wall_time
        #: Why a cancellation of :meth:`run` happened (Ctrl-C unless told otherwise).
        self.interrupt_reason = "interrupted by the user (Ctrl-C)"
        self._llm_streaks: Counter[str] = Counter()
        #: Whether the run got past its start: the initial program evaluated and checked.
        self.started = False
        search = config.search
        concurrency = config.evaluator.resolved_concurrency()
        self._in_flight = search.in_flight or 2 * concurrency
        self._k = search.lag or self._in_flight + 2 * concurrency
        self._llm_slots = asyncio.Semaphore(self._in_flight)
        self._max_iter = config.max_iterations
        self._archive = Archive(search.islands, problem.spec.features)
        self._programs: dict[str, Program] = {}
        self._done: dict[int, Program] = {}
        self._pending: dict[int, Program] = {}
        self._cache: dict[str, asyncio.Future[EvalResult]] = {}
        self._failures: dict[str, deque[ErrorInfo]] = {}
        self._models: dict[int, tuple[str, float]] = {}
        self._next_apply = 0
        self._scheduled = 0
        self._stats = _Stats()
        self._initial_score: float | None = None
        self._best: Program | None = None
        self._stop_reason: str | None = None
        self._halt: RunHalted | None = None
        self._finished = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._tg: asyncio.TaskGroup | None = None
        self._accepting = False
        self._pool: ThreadPoolExecutor | None = None

    # -- public --------------------------------------------------------------------------------
    async def run(self) -> RunSummary:
        """Run until ``max_iterations`` are applied, a budget stops it, or it is cancelled."""
        if not self._db.local_writes:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evolve-db")
        self._stats = _Stats()
        try:
            await self._load()
            first = self._done.get(0)
            if first is None:
                await self._evaluate_initial()
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
                if self.config.max_wall_time is not None:
                    begun = self._started_at if self._started_at is not None else self._stats.started
                    self._spawn(self._wall_clock(self.config.max_wall_time, begun))
                self._spawn(self._heartbeat())
                self._check_budgets()  # a resumed run may have spent its budget already
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
            await self._db_call(self._db.set_run_status, self.run_id, status, reason)
            return self._summary(status, reason)
        except (asyncio.CancelledError, KeyboardInterrupt):
            self._record_end("interrupted", self.interrupt_reason)
            raise
        except BaseException as exc:
            err = _first_error(exc)
            self._record_end("stopped" if isinstance(err, RunHalted | UserError) else "failed", str(err))
            if err is not exc:
                raise err from exc
            raise
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)

    def _record_end(self, status: str, reason: str) -> None:
        """Record how the run ended, if the database still takes writes (a full disk may not:
        then the lease, no longer renewed, shows the run as not alive)."""
        try:
            self._db.set_run_status(self.run_id, status, reason)
        except Exception as exc:
            log.warning("could not record the run as %s: %s", status, one_line(exc, last=True))

    async def aclose(self) -> None:
        """Release the model clients and the sandbox workers."""
        try:
            await self._llm.aclose()
        finally:
            await self._evaluator.aclose()

    # -- loading and the initial program ------------------------------------------------------------
    async def _load(self) -> None:
        programs = await self._db_call(self._db.programs, self.run_id)
        for usage in await self._db_call(self._db.llm_usage, self.run_id):
            self._stats.cost_usd += float(usage["cost_usd"] or 0.0)
            self._stats.tokens += int(usage["input_tokens"] or 0) + int(usage["output_tokens"] or 0)
        for p in programs:
            if p.status is Status.PENDING:
                self._pending[p.iteration] = p
            else:
                self._done[p.iteration] = p
            if p.code_hash is not None and p.status.is_terminal and p.status is not Status.DUPLICATE:
                fut: asyncio.Future[EvalResult] = asyncio.get_running_loop().create_future()
                fut.set_result(_result_of(p))
                self._cache.setdefault(p.code_hash, fut)

    async def _evaluate_initial(self) -> None:
        code = self.problem.initial_code
        loaded = self._pending.pop(0, None)
        p0 = loaded or Program(
            id=program_id(self.run_id, 0),
            run_id=self.run_id,
            iteration=0,
            parent_id=None,
            island=0,
            generation=0,
            code=code,
            code_hash=code_hash(code),
            status=Status.PENDING,
            mode="initial",
        )
        if loaded is None:
            await self._db_call(self._db.add_program, p0)
        finished = await self._evaluate(p0)
        if finished.status is not Status.EVALUATED:
            msg = finished.error.message if finished.error else finished.status.value
            what = "the scorer crashed on the initial program" if finished.status is Status.SCORER_ERROR else "the initial program failed"
            raise UserError(
                f"{self.problem.root / self.problem.spec.initial_program}: {what} "
                f"({finished.status.value}): {one_line(msg, last=True)}"
            )
        self._check_features(finished)
        self._done[0] = finished

    def _check_features(self, initial: Program) -> None:
        """A feature dimension must be a metric the scorer returns: one it never returns would
        put every program in one cell and silently collapse the archive."""
        missing = [
            f.name
            for f in self.problem.spec.features
            if f.name not in ("code_length", "line_count") and f.name not in initial.metrics
        ]
        if missing:
            raise UserError(
                f"{self.problem.root / 'problem.yaml'}: features: the scorer returned no metric "
                f"{', '.join(repr(m) for m in missing)} for the initial program "
                f"(it returned: {', '.join(sorted(initial.metrics)) or 'nothing'})"
            )

    # -- scheduling ---------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        if self._tg is None or not self._accepting:
            coro.close()
            return
        task = self._tg.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _schedule(self) -> None:
        """After iteration j is applied, iterations up to j + lag may start."""
        limit = min(self._next_apply - 1 + self._k, self._max_iter)
        while self._scheduled < limit and self._stop_reason is None:
            self._scheduled += 1
            i = self._scheduled
            if i in self._done:
                continue
            if i in self._pending:
                self._spawn(self._evaluate_pending(self._pending.pop(i)))
            else:
                self._spawn(self._iteration(self._select(i)))

    def _select(self, i: int) -> Selection:
        """Every random decision of iteration ``i``, from ``(seed, i)`` and the archive only."""
        rng = np.random.default_rng([self.config.seed, i])
        search = self.config.search
        island = (i - 1) % search.islands
        elites = self._archive.islands[island].elites()
        parent = select_parent(elites, rng, exploitation=search.exploitation, temperature=search.temperature)
        top, diverse = select_inspirations(
            elites, parent, rng, n_top=search.top_inspirations, n_diverse=search.diverse_inspirations
        )
        mode = choose_mode(self.config.llm.mode_weights, rng)
        other = None
        if mode == "crossover":
            pool = [e for isl in self._archive.islands for e in isl.elites() if e.program_id != parent.program_id]
            if pool:
                pool.sort(key=lambda e: (e.iteration, e.cell))
                other = self._programs[pool[int(rng.integers(len(pool)))].program_id]
            else:
                mode = "diff"
        return Selection(
            iteration=i,
            island=island,
            parent=self._programs[parent.program_id],
            mode=mode,
            top=tuple(self._programs[e.program_id] for e in top),
            diverse=tuple(self._programs[e.program_id] for e in diverse),
            other=other,
            failures=tuple(self._failures.get(parent.program_id, ())),
            seed=int(rng.integers(2**31 - 1)),
        )

    # -- one iteration --------------------------------------------------------------------------
    async def _iteration(self, sel: Selection) -> None:
        t0 = time.monotonic()
        parent = sel.parent
        assert parent.code is not None
        ctx = PromptContext(
            parent=parent,
            mode=sel.mode,
            top=sel.top,
            diverse=sel.diverse,
            failures=sel.failures,
            other=sel.other,
        )
        base = Program(
            id=program_id(self.run_id, sel.iteration),
            run_id=self.run_id,
            iteration=sel.iteration,
            parent_id=parent.id,
            island=sel.island,
            generation=parent.generation + 1,
            code=None,
            code_hash=None,
            status=Status.PENDING,
            mode=sel.mode,
            inspiration_ids=tuple(p.id for p in (*sel.top, *sel.diverse, *([sel.other] if sel.other else []))),
        )
        reply, call = await self._propose(sel, ctx)
        t_llm = time.monotonic() - t0
        if reply is None:
            return await self._finish_early(base, Status.LLM_ERROR, "the model call failed", call, t_llm)
        try:
            code = await self._build_child(parent.code, reply.text, "diff" if sel.mode == "diff" else "rewrite")
        except DiffError as exc:
            return await self._finish_early(base, Status.DIFF_ERROR, str(exc), call, t_llm)
        if code == parent.code:
            return await self._finish_early(base, Status.DIFF_ERROR, "the edits change nothing", call, t_llm)
        child = base.model_copy(
            update={
                "code": code,
                "code_hash": code_hash(code),
                "diff": unified_diff(parent.code, code),
                "timings": {"llm_s": t_llm},
            }
        )
        await self._record(child, call)
        await self._evaluate_pending(child)

    async def _build_child(self, parent_code: str, reply_text: str, mode: str) -> str:
        """Parse and apply a reply; a long one is parsed on a thread so the loop never stalls."""
        if len(reply_text) < _INLINE_PARSE_CHARS:
            return build_child(parent_code, reply_text, mode)
        return await asyncio.to_thread(build_child, parent_code, reply_text, mode)

    async def _propose(self, sel: Selection, ctx: PromptContext) -> tuple[LLMReply | None, _Call | None]:
        """Ask the model; shrink the prompt on a context-length error; record every call.

        The call that ends the attempts (a reply, or a retryable error) is returned unwritten, to
        be recorded with the program made from it in one transaction (see :meth:`_record`).
        """
        attempts = [ctx, PromptContext(parent=ctx.parent, mode=ctx.mode, top=ctx.top[:1], other=ctx.other),
                    PromptContext(parent=ctx.parent, mode=ctx.mode if ctx.mode != "crossover" else "diff")]
        for attempt in attempts:
            messages = self._prompts.render(attempt)
            request = LLMRequest(
                messages=messages,
                mode="diff" if attempt.mode == "diff" else "rewrite",
                parent_code=ctx.parent.code or "",
                seed=sel.seed,
            )
            try:
                async with self._llm_slots:
                    reply = await self._llm.complete(request)
            except LLMError as exc:
                failed = _Call(messages, attempt.mode, error=(exc.kind, str(exc)), retried=exc.retried)
                if exc.retryable and exc.kind != "context_length":
                    self._count_llm_failure(exc)
                    return None, failed
                await self._db_call(
                    partial(self._db.add_llm_call, self.run_id, sel.iteration, messages, None,
                            model=self._llm.name, mode=attempt.mode, error=failed.error,
                            retried=failed.retried)
                )
                if exc.kind == "context_length":
                    continue
                raise RunAborted(str(exc)) from exc
            self._llm_streaks[reply.model] = 0
            self._charge(reply)
            self._models[sel.iteration] = (reply.model, reply.cost_usd)
            return reply, _Call(messages, attempt.mode, reply=reply, retried=reply.retried)
        return None, None

    async def _record(self, program: Program, call: _Call | None) -> None:
        """Write a new program, in one transaction with the model call it was made from: one
        write instead of two on every iteration's path."""
        if call is None:
            await self._db_call(self._db.add_program, program)
            return
        await self._db_call(
            partial(self._db.add_llm_call, self.run_id, program.iteration, call.messages, call.reply,
                    model=self._llm.name, mode=call.mode, error=call.error, program=program,
                    retried=call.retried)
        )

    async def _finish_early(
        self, base: Program, status: Status, message: str, call: _Call | None, t_llm: float
    ) -> None:
        failed = base.model_copy(
            update={"status": status, "error": ErrorInfo(kind=status, message=message), "timings": {"llm_s": t_llm}}
        )
        await self._record(failed, call)
        self._complete(failed)

    async def _evaluate_pending(self, program: Program) -> None:
        finished = await self._evaluate(program)
        self._complete(finished)

    async def _evaluate(self, program: Program) -> Program:
        """Evaluate once per normalized code; a repeat waits for (or reuses) the first result."""
        assert program.code is not None and program.code_hash is not None
        t0 = time.monotonic()
        existing = self._cache.get(program.code_hash)
        duplicate = existing is not None
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
        status = Status.DUPLICATE if duplicate else result.status
        features = compute_features(self.problem.spec.features, result.metrics, program.code) if result.ok else {}
        finished = program.model_copy(
            update={
                "status": status,
                "metrics": dict(result.metrics),
                "features": features,
                "cell": cell_of(self.problem.spec.features, features) if result.ok else None,
                "error": result.error,
                "feedback": result.feedback,
                "timings": {**program.timings, "eval_s": time.monotonic() - t0, "sandbox_s": result.wall_time_s},
            }
        )
        score = finished.score(self.problem.spec.metrics.primary)
        await self._db_call(partial(self._db.finish_program, finished, stdout_tail=result.stdout_tail, score=score))
        return finished

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
        primary = self.problem.spec.metrics.primary
        if p.code is not None:
            self._programs[p.id] = p
        if p.iteration > 0 and p.status is not Status.DUPLICATE:
            self._stats.evaluations += int(p.code is not None)
        if p.status.is_failure:
            self._stats.failures[p.status.value] += 1
            # A scorer's crash is the scorer's bug: its traceback (the hidden scorer's code) is
            # not shown to the model as the child's failure.
            if p.parent_id is not None and p.error is not None and p.status is not Status.SCORER_ERROR:
                queue = self._failures.setdefault(p.parent_id, deque(maxlen=self.config.search.feedback_failures))
                queue.append(p.error)
        score = p.score(primary)
        if score is not None and p.cell is not None:
            elite = Elite(p.id, self.problem.fitness(score), p.cell, p.iteration)
            islands = range(len(self._archive.islands)) if p.iteration == 0 else [p.island]
            for island in islands:
                self._archive.add(island, elite)
            if p.iteration == 0:
                self._initial_score = score
            best = self._best.score(primary) if self._best else None
            if best is None or self.problem.is_better(score, best):
                self._best = p
            target = self.config.target_score
            if target is not None and not self.problem.is_better(target, score) and self._stop_reason is None:
                self._stop(f"target score {target} reached")
        self._learn(p)
        self._migrate(p.iteration)

    def _learn(self, p: Program) -> None:
        model = self._models.pop(p.iteration, None)
        if model is None or self._learner is None or p.parent_id is None:
            return
        parent = self._programs.get(p.parent_id)
        primary = self.problem.spec.metrics.primary
        child_score, parent_score = p.score(primary), parent.score(primary) if parent else None
        gain = 0.0
        if child_score is not None and parent_score is not None:
            gain = self.problem.fitness(child_score) - self.problem.fitness(parent_score)
        self._learner.report(model[0], gain, model[1])

    def _migrate(self, iteration: int) -> None:
        search = self.config.search
        period = search.islands * search.migration_interval
        if iteration == 0 or search.islands < 2 or iteration % period:
            return
        moves = migration_plan([isl.elites() for isl in self._archive.islands], search.migration_count)
        logged = [
            (iteration, elite.program_id, src, dst)
            for elite, src, dst in moves
            if self._archive.add(dst, elite).value != "not_added"
        ]
        if logged and self._tg is not None:
            self._spawn(self._db_call(self._db.add_migrations, self.run_id, logged))

    # -- budgets, progress, helpers -------------------------------------------------------------
    def _charge(self, reply: LLMReply) -> None:
        """Count a reply against the cost and token budgets; stop the run when one is spent."""
        self._stats.cost_usd += reply.cost_usd
        self._stats.tokens += reply.input_tokens + reply.output_tokens
        self._check_budgets()

    def _check_budgets(self) -> None:
        cfg = self.config
        if self._stop_reason is not None:
            return
        if cfg.max_cost_usd is not None and self._stats.cost_usd >= cfg.max_cost_usd:
            self._stop(f"max_cost_usd {cfg.max_cost_usd:g} reached (${self._stats.cost_usd:.4f})")
        elif cfg.max_tokens is not None and self._stats.tokens >= cfg.max_tokens:
            self._stop(f"max_tokens {cfg.max_tokens} reached ({self._stats.tokens})")

    def _stop(self, reason: str) -> None:
        self._stop_reason = reason
        self._finished.set()

    def _halt_run(self, error: RunHalted) -> None:
        """Stop now, with an error the caller sees (exit non-zero); the run stays resumable."""
        if self._halt is None:
            self._halt = error
            self._stop(str(error))

    def _count_llm_failure(self, exc: LLMError) -> None:
        """The circuit breaker: a model that fails ``max_llm_failures`` calls in a row (each
        after its retries) stops the run instead of burning every iteration; so does a server
        that asks to wait longer than the retry budget allows (``rate_limited``)."""
        model = exc.model or self._llm.name
        self._llm_streaks[model] += 1
        limit = self.config.max_llm_failures
        if exc.kind == "rate_limited":
            why = "asks to wait longer than llm.retry.max_retry_after_s"
        elif self._llm_streaks[model] >= limit:
            why = f"failed {limit} calls in a row (max_llm_failures)"
        else:
            return
        at = f" at {exc.endpoint}" if exc.endpoint and exc.endpoint not in str(exc) else ""
        self._halt_run(RunHalted(f"model '{model}'{at} {why}; last error: {one_line(exc, last=True)}"))

    async def _heartbeat(self) -> None:
        """Mark the run alive and renew its lease, every ``heartbeat_s``; a lease another
        controller took over stops this one."""
        while True:
            try:
                if self._lease is not None:
                    await self._db_call(self._lease.renew)
                await self._db_call(self._db.touch_run, self.run_id)
            except LeaseLost as exc:
                self._halt_run(RunHalted(str(exc)))
                return
            await asyncio.sleep(self._heartbeat_s)

    async def _wall_clock(self, seconds: float, begun: float) -> None:
        """Stop the run ``seconds`` after ``begun`` (start-up and the initial program count)."""
        await asyncio.sleep(max(0.0, begun + seconds - time.monotonic()))
        self._stop(f"max_wall_time {seconds:g} s reached")

    def _report_progress(self) -> None:
        if self._on_progress is None:
            return
        primary = self.problem.spec.metrics.primary
        elapsed = time.monotonic() - self._stats.started
        self._on_progress(
            Progress(
                run_id=self.run_id,
                applied=max(0, self._next_apply - 1),
                max_iterations=self._max_iter,
                best_score=self._best.score(primary) if self._best else None,
                initial_score=self._initial_score,
                evaluations=self._stats.evaluations,
                evals_per_s=self._stats.evaluations / elapsed if elapsed > 0 else 0.0,
                failures=dict(self._stats.failures),
                coverage=self._archive.coverage(),
                in_flight=len(self._tasks),
                elapsed_s=elapsed,
                cost_usd=self._stats.cost_usd,
            )
        )

    def _summary(self, status: str, reason: str) -> RunSummary:
        return RunSummary(
            run_id=self.run_id,
            status=status,
            reason=reason,
            best=self._best,
            initial_score=self._initial_score,
            iterations=max(0, self._next_apply - 1),
            failures=dict(self._stats.failures),
        )

    async def _db_call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a database call; once asked for, a write happens even if the task that asked is
        cancelled (a finished evaluation is never dropped).

        A local SQLite write (WAL, no fsync per commit) takes a few hundred microseconds, less
        than handing it to a thread and back on a busy machine, so it runs inline, where nothing
        can cancel it halfway. Other databases are a network round trip away: those calls run on
        the writer thread, shielded from cancellation.
        """
        if self._pool is None:
            return fn(*args)
        loop = asyncio.get_running_loop()
        return await asyncio.shield(loop.run_in_executor(self._pool, partial(fn, *args)))


def _result_of(p: Program) -> EvalResult:
    """A stored, finished program's evaluation, for the duplicate cache of a resumed run."""
    return EvalResult(status=p.status, metrics=dict(p.metrics), feedback=p.feedback, error=p.error)


def _first_error(exc: BaseException) -> BaseException:
    """The first leaf of an exception group (TaskGroup wraps a task's failure)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
