"""What a run's database says about it, as typed records: its problem, state, outcomes, failures,
programs, lineage, one program in full, and one row per program for export.

Everything here reads the database alone: the problem's spec is kept in the run's history when
the run starts, so a run stays readable after its problem folder moved or was deleted, or its run
folder was renamed or copied to another machine. Nothing here writes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from evolve.errors import UserError
from evolve.problem import Problem, ProblemSpec, load_problem
from evolve.records import Program, Status
from evolve.runpage import ModelSummary

if TYPE_CHECKING:
    from evolve.database.models import RunRow
    from evolve.database.rows import RunInfo
    from evolve.database.sqlite_reader import SqliteReader
    from evolve.database.store import Database

    #: What the functions here read from: the SQLAlchemy store, or the light SQLite reader.
    Reader: TypeAlias = Database | SqliteReader

#: The controller's heartbeat (``evolve.controller.HEARTBEAT_S``, not imported: reading a run
#: must not load the engine); a test keeps the two equal.
HEARTBEAT_S = 10.0

#: How many recent failures ``status`` shows with their messages.
RECENT_FAILURES = 5


def open_reader(url: str) -> Reader:
    """A read-only connection to the database at ``url``: a SQLite file through the standard
    library (an answer in a fraction of a second), anything else through SQLAlchemy."""
    if url.startswith("sqlite:///") and "?" not in url:
        from evolve.database.sqlite_reader import SqliteReader

        return SqliteReader.open(url[len("sqlite:///"):])
    from evolve.database.store import Database

    return Database.open_readonly(url)


def run_row(db: Reader, run_id: str) -> RunRow | RunInfo:
    row = db.get_run(run_id)
    if row is None:
        ids = [r.id for r in db.list_runs()]
        known = f" (runs there: {', '.join(ids)})" if ids else " (it holds no runs)"
        raise UserError(f"RUN: no run '{run_id}' in this database{known}")
    return row


def stored_problem(db: Reader, run_id: str, *, initial_code: str | None = None) -> Problem:
    """The run's problem as it was when the run started, from the database (``initial_code``:
    the initial program's code, when the caller has it at hand).

    A run written before the spec was stored falls back to loading its problem folder.
    """
    row = run_row(db, run_id)
    for event in db.run_events(run_id):
        stored = event.detail.get("problem")
        if event.kind == "start" and isinstance(stored, dict) and "spec" in stored:
            if initial_code is None:
                initial = db.find_program(run_id, "0")
                initial_code = (initial.code or "") if initial is not None else ""
            return Problem(
                spec=ProblemSpec.model_validate(stored["spec"]),
                root=Path(row.problem_root),
                initial_code=initial_code,
                fingerprint=row.problem_fingerprint,
            )
    try:
        return load_problem(row.problem_root)
    except UserError as exc:
        raise UserError(
            f"run '{run_id}': its database keeps no copy of the problem (written by an earlier "
            f"version) and the problem folder cannot be loaded: {exc}"
        ) from exc


def run_state(row: RunRow | RunInfo, lease: dict[str, Any] | None = None) -> str:
    """The stored status, with ``running`` checked against the run's lease, which the live
    controller's heartbeat renews: a killed run's lease expires, and one whose holder was a
    process of this host that is gone is not alive whatever its expiry."""
    if row.status != "running":
        return row.status
    now = datetime.now(UTC)
    if lease is not None:
        from evolve.database.holders import holder_alive

        expires = lease["expires_at"] if lease["expires_at"].tzinfo else lease["expires_at"].replace(tzinfo=UTC)
        if expires > now and holder_alive(lease["host"], lease["pid"], lease["started"]):
            return f"running: pid {lease['pid']} on {lease['host']}"
    last = row.updated_at if row.updated_at.tzinfo else row.updated_at.replace(tzinfo=UTC)
    silent = (now - last).total_seconds()
    if lease is None and silent < 6 * HEARTBEAT_S:
        return "running"  # a database from before leases
    return f"stale (no heartbeat for {silent / 60:.0f} min: killed? resume it)"


@dataclass(frozen=True)
class RunListing:
    """One line of the run list."""

    run: str
    problem: str
    status: str
    iterations: int
    best: float | None
    updated: datetime
    database: str


def unreadable_listing(where: str, exc: Exception) -> RunListing:
    """The run list's line for a run folder whose database cannot be read (corrupt, truncated)."""
    from evolve.errors import one_line

    detail = getattr(exc, "orig", None) or exc
    name = Path(where).name if where else "?"
    return RunListing(name, "-", f"unreadable: {one_line(detail)}", 0, None, datetime.fromtimestamp(0, UTC), where)


def list_runs(db: Reader, where: str) -> list[RunListing]:
    """Every run of ``db`` (``where`` names the database in the listing)."""
    out = []
    for row in db.list_runs():
        counts = db.status_counts(row.id)
        best = None
        try:
            problem = stored_problem(db, row.id)
            program = db.best_program(row.id, maximize=problem.maximize)
            best = program.score(problem.spec.metrics.primary) if program else None
        except UserError:
            pass
        out.append(RunListing(row.id, row.problem, run_state(row, db.lease_holder(row.id)), max(0, sum(counts.values()) - 1), best,
                              row.updated_at, where))
    return out


@dataclass(frozen=True)
class IslandFill:
    island: int
    cells: int
    of_cells: int
    best: float | None


@dataclass(frozen=True)
class Failure:
    """A failed program, newest first in :attr:`RunStatus.recent_failures`."""

    iteration: int
    program_id: str
    status: str
    stage: str | None
    message: str


@dataclass(frozen=True)
class RunStatus:
    """Everything a user checks first about a run."""

    run_id: str
    state: str
    stop_reason: str | None
    problem: str
    problem_root: str
    primary: str
    direction: str
    iterations: int
    max_iterations: int | None
    seed: int
    best_score: float | None
    best_id: str | None
    initial_score: float | None
    best_known: float | None
    best_known_source: str | None
    created: datetime
    updated: datetime
    outcomes: dict[str, int]
    islands: list[IslandFill]
    models: list[ModelSummary]
    llm_failures: list[dict[str, Any]]
    recent_failures: list[Failure]
    history: list[dict[str, Any]]
    strategy: str = "map_elites"  # the search strategy (search.strategy)
    front: list[tuple[str, dict[str, float]]] | None = None  # search=pareto: (program id, objectives)


def run_status(db: Reader, run_id: str) -> RunStatus:
    row = run_row(db, run_id)
    programs = db.programs(run_id)
    by_iter = {p.iteration: p for p in programs}
    initial = by_iter.get(0)
    problem = stored_problem(db, run_id, initial_code=(initial.code or "") if initial else "")
    primary = problem.spec.metrics.primary
    best = _best(programs, problem)
    counts = Counter(p.status.value for p in programs if p.iteration > 0)
    outcomes = {st.value: counts[st.value] for st in Status if counts.get(st.value)}
    bk = problem.spec.best_known
    search = row.config.get("search", {})
    strategy = strategy_of(row)
    return RunStatus(
        run_id=row.id, state=run_state(row, db.lease_holder(row.id)), stop_reason=row.stop_reason, problem=row.problem,
        problem_root=row.problem_root, primary=primary, direction=problem.spec.metrics.direction,
        iterations=max(0, len(programs) - 1), max_iterations=row.config.get("max_iterations"), seed=row.seed,
        best_score=best.score(primary) if best else None, best_id=best.id if best else None,
        initial_score=initial.score(primary) if initial else None,
        best_known=bk.value if bk else None, best_known_source=bk.source if bk else None,
        created=row.created_at, updated=row.updated_at, outcomes=outcomes,
        islands=_islands(programs, problem, int(search.get("islands", 1)) if strategy == "map_elites" else 1),
        models=model_summaries(db, run_id, programs, problem),
        llm_failures=db.llm_failures(run_id),
        recent_failures=[_failure(p) for p in reversed(programs) if p.status.is_failure][:RECENT_FAILURES],
        history=[{"kind": e.kind, "at": e.at.isoformat(timespec="seconds"), **_public(e.detail)}
                 for e in db.run_events(run_id)],
        strategy=strategy, front=_front(programs, problem) if strategy == "pareto" else None,
    )


def strategy_of(row: RunRow | RunInfo) -> str:
    """The run's search strategy (``search.strategy`` of its stored config)."""
    return str(row.config.get("search", {}).get("strategy", "map_elites"))


def _front(programs: Sequence[Program], problem: Problem) -> list[tuple[str, dict[str, float]]]:
    """A pareto run's best: its non-dominated programs with their objectives, best first by
    the first objective (so the list reads along the trade-off), the earliest of equals first."""
    objectives = problem.spec.metrics.objectives
    if not objectives:
        return []
    from evolve.search.pareto import front_of, objective_vector

    front = sorted(
        front_of(programs, objectives),
        key=lambda p: (tuple(-v for v in objective_vector(p, objectives)), p.iteration),
    )
    return [(p.id, {k: objective_vector(p, {k: "maximize"})[0] for k in objectives}) for p in front]


def _best(programs: Sequence[Program], problem: Problem) -> Program | None:
    """The best evaluated program, the earliest of equals (as :meth:`Database.best_program`)."""
    primary = problem.spec.metrics.primary
    best: tuple[float, Program] | None = None
    for p in programs:  # iteration order: a later equal never replaces an earlier one
        score = p.score(primary)
        if score is not None and (best is None or problem.is_better(score, best[0])):
            best = (score, p)
    return best[1] if best else None


def _public(detail: dict[str, Any]) -> dict[str, Any]:
    """A history entry without the stored problem spec (kept for reading, not for showing)."""
    return {k: v for k, v in detail.items() if k != "problem"}


def _failure(p: Program) -> Failure:
    message = p.error.message if p.error else ""
    return Failure(p.iteration, p.id, p.status.value, p.error.stage if p.error else None, message)


def _islands(programs: Sequence[Program], problem: Problem, n_islands: int) -> list[IslandFill]:
    primary = problem.spec.metrics.primary
    n_cells = math.prod(f.bins for f in problem.spec.features) if problem.spec.features else 1
    out = []
    for i in range(n_islands):
        mine = [p for p in programs if p.status is Status.EVALUATED and (p.island == i or p.iteration == 0)]
        scores = [s for p in mine if (s := p.score(primary)) is not None]
        top = (max(scores) if problem.maximize else min(scores)) if scores else None
        out.append(IslandFill(i, len({p.cell for p in mine}), n_cells, top))
    return out


def model_summaries(db: Reader, run_id: str, programs: Sequence[Program], problem: Problem) -> list[ModelSummary]:
    """Per model: its calls, and the children made from its replies (failed, beat their parent)."""
    by_iter = {p.iteration: p for p in programs}
    by_id = {p.id: p for p in programs}
    out = []
    for u in db.llm_usage(run_id):
        model = str(u["model"])
        made = [by_iter[i] for i in db.model_iterations(run_id, model) if i in by_iter]
        out.append(
            ModelSummary(
                model=model,
                calls=int(u["calls"]),
                errors=int(u["errors"]),
                retried=int(u["retried"]),
                input_tokens=int(u["input_tokens"] or 0),
                output_tokens=int(u["output_tokens"] or 0),
                cost_usd=float(u["cost_usd"] or 0.0),
                mean_latency_s=float(u["mean_latency_s"] or 0.0),
                children=len(made),
                failed=sum(1 for c in made if c.status.is_failure),
                improved=sum(1 for c in made if improves(c, by_id.get(c.parent_id or ""), problem)),
            )
        )
    return out


def improves(child: Program, parent: Program | None, problem: Problem) -> bool:
    primary = problem.spec.metrics.primary
    cs, ps = child.score(primary), parent.score(primary) if parent else None
    return cs is not None and ps is not None and problem.is_better(cs, ps)


def best_of(db: Reader, run_id: str) -> tuple[Program, str]:
    problem = stored_problem(db, run_id)
    best = db.best_program(run_id, maximize=problem.maximize)
    if best is None:
        raise UserError(f"run '{run_id}' has no evaluated program yet")
    return best, problem.spec.metrics.primary


def find_program(db: Reader, run_id: str, which: str) -> Program:
    """A program by id, id prefix or iteration number; a clear error otherwise."""
    found = db.find_program(run_id, which)
    if found is None:
        raise UserError(f"PROGRAM: no single program matches '{which}' in run '{run_id}' "
                        "(give an id, a longer id prefix, or an iteration number)")
    return found


def lineage_of(db: Reader, run_id: str, program: str | None) -> tuple[list[Program], str, bool]:
    """The chain initial -> ``program`` (default: the best), the primary metric, maximize."""
    problem = stored_problem(db, run_id)
    target = best_of(db, run_id)[0] if program is None else find_program(db, run_id, program)
    return db.lineage(target.id), problem.spec.metrics.primary, problem.maximize


@dataclass(frozen=True)
class ProgramDetail:
    """One program in full: itself, its parent, the model call it came from, its children; for a
    pareto run, the run's front too (its best is the front, not one program)."""

    program: Program
    primary: str
    parent: Program | None
    call: dict[str, Any] | None
    children: list[Program]
    #: search=pareto: the run's front, (program id, objectives); ``None`` for other strategies.
    front: list[tuple[str, dict[str, float]]] | None = None
    #: No program was asked for: this is the run's best (pareto: the front's best by the primary).
    picked: bool = False

    @property
    def on_front(self) -> bool | None:
        """Whether the program is on its pareto run's front (``None``: not a pareto run)."""
        return None if self.front is None else any(pid == self.program.id for pid, _ in self.front)


def program_detail(db: Reader, run_id: str, which: str | None) -> ProgramDetail:
    """The program ``which`` names (id, id prefix, iteration), or the run's best when ``None``."""
    problem = stored_problem(db, run_id)
    front: list[tuple[str, dict[str, float]]] | None = None
    program: Program | None = None
    if strategy_of(run_row(db, run_id)) == "pareto":
        programs = db.programs(run_id)
        front = _front(programs, problem)
        ids = {pid for pid, _ in front}
        if which is None:
            program = _best([p for p in programs if p.id in ids], problem)
    if program is None:
        program = best_of(db, run_id)[0] if which is None else find_program(db, run_id, which)
    parent = db.program(program.parent_id) if program.parent_id else None
    return ProgramDetail(program, problem.spec.metrics.primary, parent, db.program_call(program.id),
                         db.children(program.id), front=front, picked=which is None)


def export_rows(db: Reader, run_id: str) -> list[dict[str, Any]]:
    """One row per program: identity, lineage (ancestor ids, initial first), status, score, metrics,
    features, error, the model call's model, tokens and cost, and the code."""
    problem = stored_problem(db, run_id)
    primary = problem.spec.metrics.primary
    programs = db.programs(run_id)
    by_id = {p.id: p for p in programs}
    calls = {int(c["iteration"]): c for c in db.llm_calls(run_id) if c["reply"] is not None or c["error_kind"]}
    rows = []
    for p in programs:
        ancestors: list[str] = []
        current = by_id.get(p.parent_id or "")
        while current is not None and len(ancestors) <= len(programs):
            ancestors.append(current.id)
            current = by_id.get(current.parent_id or "")
        call = calls.get(p.iteration) if p.iteration > 0 else None
        rows.append({
            "run_id": run_id, "id": p.id, "iteration": p.iteration, "parent_id": p.parent_id,
            "lineage": ancestors[::-1], "island": p.island, "generation": p.generation, "mode": p.mode,
            "status": p.status.value, "score": p.score(primary), "metrics": dict(p.metrics),
            "features": dict(p.features), "cell": list(p.cell) if p.cell is not None else None,
            "error_kind": p.error.kind.value if p.error else None,
            "error_message": p.error.message if p.error else None,
            "model": call["model"] if call else None,
            "input_tokens": call["input_tokens"] if call else None,
            "output_tokens": call["output_tokens"] if call else None,
            "cost_usd": call["cost_usd"] if call else None,
            "code": p.code,
        })
    return rows
