"""Where a run starts: a resumed run's stored state, and the initial program, which must pass."""

from __future__ import annotations

from evolve.budgets import Budgets
from evolve.codehash import code_hash
from evolve.errors import UserError, one_line
from evolve.evaluations import Evaluations
from evolve.problem import Problem
from evolve.proposals import program_id
from evolve.recorder import Recorder
from evolve.records import Program, Status


async def restore(
    recorder: Recorder, budgets: Budgets, evals: Evaluations
) -> tuple[dict[int, Program], dict[int, Program]]:
    """A resumed run's spending, and its programs by iteration: finished, and recorded but not
    evaluated (pending); the duplicate cache learns each. A new run has none."""
    db, done, pending = recorder.db, dict[int, Program](), dict[int, Program]()
    budgets.restore(await recorder.call(db.llm_usage, recorder.run_id))
    for p in await recorder.call(db.programs, recorder.run_id):
        (pending if p.status is Status.PENDING else done)[p.iteration] = p
        evals.remember(p)
    return done, pending


async def start_from(
    problem: Problem, evals: Evaluations, recorder: Recorder, done: dict[int, Program], pending: dict[int, Program]
) -> Program:
    """Iteration 0: evaluated now (a new run, or a start that was killed), or the stored one.

    Raises:
        UserError: it failed (now, or in the run's first start).
    """
    first = done.get(0)
    if first is None:
        return await evaluate_initial(problem, recorder.run_id, evals, recorder, pending.pop(0, None))
    if first.status is not Status.EVALUATED:
        raise UserError(
            f"run '{recorder.run_id}' cannot go on: its initial program failed ({first.status.value}: "
            f"{one_line(first.error.message if first.error else '', last=True)}); "
            "fix the problem and start a new run"
        )
    return first


async def evaluate_initial(
    problem: Problem, run_id: str, evals: Evaluations, recorder: Recorder, loaded: Program | None
) -> Program:
    """Record (unless ``loaded`` from a killed start) and evaluate iteration 0.

    Raises:
        UserError: it failed, the scorer crashed on it, or a feature is not among its metrics.
    """
    code = problem.initial_code
    p0 = loaded or Program(
        id=program_id(run_id, 0), run_id=run_id, iteration=0, parent_id=None, island=0, generation=0,
        code=code, code_hash=code_hash(code), status=Status.PENDING, mode="initial",
    )
    if loaded is None:
        await recorder.program(p0)
    finished = await evals.evaluate(p0)
    if finished.status is not Status.EVALUATED:
        msg = finished.error.message if finished.error else finished.status.value
        what = "the scorer crashed on the initial program" if finished.status is Status.SCORER_ERROR else "the initial program failed"
        raise UserError(
            f"{problem.root / problem.spec.initial_program}: {what} "
            f"({finished.status.value}): {one_line(msg, last=True)}"
        )
    check_features(problem, finished)
    return finished


def check_features(problem: Problem, initial: Program) -> None:
    """A feature dimension must be a metric the scorer returns: one it never returns would put
    every program in one cell and silently collapse the archive."""
    missing = [
        f.name for f in problem.spec.features
        if f.name not in ("code_length", "line_count") and f.name not in initial.metrics
    ]
    if missing:
        raise UserError(
            f"{problem.root / 'problem.yaml'}: features: the scorer returned no metric "
            f"{', '.join(repr(m) for m in missing)} for the initial program "
            f"(it returned: {', '.join(sorted(initial.metrics)) or 'nothing'})"
        )


__all__ = ["check_features", "evaluate_initial", "restore", "start_from"]
