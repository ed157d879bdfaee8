"""The ``evolve`` command line: run, resume, status, best, lineage, eval, init, problems."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from evolve import app as wiring
from evolve import report
from evolve.config import EvaluatorConfig, RunConfig
from evolve.controller import Controller, RunAborted, RunSummary
from evolve.database.lease import LeaseHeld
from evolve.display import LiveDisplay, fmt_score
from evolve.errors import UserError, one_line
from evolve.problem import Problem, load_problem
from evolve.scaffold import scaffold_problem


def _process_started() -> float:
    """The ``time.monotonic()`` at which this process began (interpreter start-up and imports
    count against ``max_wall_time``, as a user timing the command sees them)."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[-1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        age = uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.monotonic()
    return time.monotonic() - min(max(age, 0.0), 600.0)


_STARTED = _process_started()

cli = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="LLM-driven evolutionary algorithm discovery.",
)
out = Console()
err = Console(stderr=True)

Overrides = Annotated[list[str] | None, typer.Argument(help="Hydra overrides, e.g. problem=circle_packing max_iterations=300")]
DbOpt = Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL of the run's database (default: the run folder's SQLite file)")]
RunsDir = Annotated[str, typer.Option("--runs-dir", help="folder that holds run folders")]


class Terminated(Exception):
    """SIGTERM arrived while the run was starting (before its event loop handles it)."""


def _terminate(_signum: int, _frame: object) -> None:
    raise Terminated


def _drive(opened: wiring.OpenRun) -> RunSummary:
    """Run a held run to its end; Ctrl-C and SIGTERM stop it cleanly (``interrupted``, resumable).
    A fresh run whose start fails (a missing key, a failing initial program, an interrupt) is
    removed again, so no ghost run is left behind."""
    config, problem, loc = opened.config, opened.problem, opened.loc
    where = str(loc.run_dir) if loc.run_dir is not None else loc.run_id
    display = LiveDisplay(err, f"evolve · {problem.name} · {loc.run_id}")
    previous = signal.signal(signal.SIGTERM, _terminate)
    keep = True
    controller: Controller | None = None
    try:
        controller = wiring.build_controller(
            run_id=loc.run_id, config=config, problem=problem, db=opened.db,
            on_progress=display.update, lease=opened.lease, started_at=_STARTED,
        )
        with display.running(config.progress):
            summary = asyncio.run(wiring.execute(controller))
    except (KeyboardInterrupt, Terminated, asyncio.CancelledError) as exc:
        keep = not opened.fresh or (controller is not None and controller.started)
        how = "interrupted" if isinstance(exc, KeyboardInterrupt) else "terminated (SIGTERM)"
        if keep:
            err.print(f"[yellow]{how}[/]; continue with: evolve resume {where}", soft_wrap=True)
        else:
            err.print(f"[yellow]{how}[/] during start-up; nothing was kept", soft_wrap=True)
        raise typer.Exit(130 if isinstance(exc, KeyboardInterrupt) else 143) from None
    except BaseException:
        keep = not opened.fresh or (controller is not None and controller.started)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        if keep:
            opened.close()
        else:
            opened.discard()
    _print_summary(summary, problem, where)
    return summary


def _start(config: RunConfig) -> wiring.OpenRun:
    """Create a new run; Ctrl-C or SIGTERM while creating it leaves nothing behind."""
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return wiring.start_run(config)
    except (KeyboardInterrupt, Terminated) as exc:
        err.print("[yellow]interrupted[/] during start-up; nothing was kept", soft_wrap=True)
        raise typer.Exit(130 if isinstance(exc, KeyboardInterrupt) else 143) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _print_summary(summary: RunSummary, problem: Problem, where: str) -> None:
    primary = problem.spec.metrics.primary
    best = summary.best.score(primary) if summary.best else None
    gain = f" ({best - summary.initial_score:+.6g} over the initial program)" if best is not None and summary.initial_score is not None else ""
    err.print(f"run [bold]{summary.run_id}[/] {summary.status}: {summary.reason}")
    err.print(f"best {primary}: [bold green]{fmt_score(best)}[/]{gain}")
    err.print(f"next: evolve status {where} | evolve best {where} -o best.py | evolve lineage {where}", soft_wrap=True)


@cli.command()
def run(overrides: Overrides = None) -> None:
    """Start a discovery run (default: offline mutator, local sandbox, SQLite under runs/)."""
    config = wiring.compose_config(overrides or [])
    _drive(_start(config))


@cli.command()
def resume(
    run: Annotated[str, typer.Argument(help="run folder or name under runs/")],
    overrides: Overrides = None,
    db: DbOpt = None,
    runs_dir: RunsDir = "runs",
    allow_changed_problem: Annotated[bool, typer.Option(help="resume even if the problem's files changed")] = False,
) -> None:
    """Continue a stopped, interrupted or killed run where it stopped (overrides such as max_iterations=500 allowed)."""
    loc = wiring.locate_run(run, db, runs_dir)
    _drive(wiring.reopen_run(loc, overrides or [], allow_changed_problem=allow_changed_problem))


@cli.command()
def replay(
    run: Annotated[str, typer.Argument(help="run folder or name under runs/ to reproduce")],
    overrides: Overrides = None,
    db: DbOpt = None,
    runs_dir: RunsDir = "runs",
) -> None:
    """Reproduce a recorded run exactly from its stored model replies: no API, no cost."""
    loc = wiring.locate_run(run, db, runs_dir)
    config = wiring.replay_config(loc, overrides or [])
    opened = _start(config)
    _drive(opened)
    err.print(wiring.compare_replay(loc, opened.loc), soft_wrap=True)


@cli.command()
def status(
    run: Annotated[str | None, typer.Argument(help="run folder or name; none lists all runs")] = None,
    db: DbOpt = None,
    runs_dir: RunsDir = "runs",
    html: Annotated[Path | None, typer.Option("--html", help="also write a page: score chart, archive maps, score against spend")] = None,
) -> None:
    """Show a run: progress, best program, failures by kind, archive, model usage."""
    if html is not None and run is None:
        raise UserError("--html needs a RUN")
    if run is None:
        out.print(report.runs_table(Path(runs_dir)))
        return
    loc = wiring.locate_run(run, db, runs_dir)
    database = wiring.open_db(loc)
    try:
        out.print(report.run_status(database, loc.run_id))
        if html is not None:
            html.write_text(report.run_html(database, loc.run_id))
            err.print(f"wrote {html}")
    finally:
        database.close()


@cli.command()
def best(
    run: Annotated[str, typer.Argument(help="run folder or name under runs/")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="write the program here (default: stdout)")] = None,
    db: DbOpt = None,
    runs_dir: RunsDir = "runs",
) -> None:
    """Write the best program of a run."""
    loc = wiring.locate_run(run, db, runs_dir)
    database = wiring.open_db(loc)
    try:
        program, primary = report.best_of(database, loc.run_id)
    finally:
        database.close()
    assert program.code is not None
    if output is None:
        sys.stdout.write(program.code)
    else:
        output.write_text(program.code)
    err.print(f"{primary} = {fmt_score(program.score(primary))} (program {program.id}, iteration {program.iteration})")


@cli.command()
def lineage(
    run: Annotated[str, typer.Argument(help="run folder or name under runs/")],
    program: Annotated[str | None, typer.Argument(help="program id, id prefix or iteration (default: the best)")] = None,
    db: DbOpt = None,
    runs_dir: RunsDir = "runs",
    diffs: Annotated[bool, typer.Option("--diffs/--no-diffs", help="show each step's diff")] = True,
    html: Annotated[Path | None, typer.Option("--html", help="also write a browsable HTML page")] = None,
) -> None:
    """Show how a program descended from the initial one: each step's score change and diff."""
    loc = wiring.locate_run(run, db, runs_dir)
    database = wiring.open_db(loc)
    try:
        chain, primary, _maximize = report.lineage_of(database, loc.run_id, program)
    finally:
        database.close()
    for renderable in report.lineage_view(chain, primary, diffs=diffs):
        out.print(renderable)
    if html is not None:
        html.write_text(report.lineage_html(chain, primary, run_id=loc.run_id))
        err.print(f"wrote {html}")


@cli.command("eval")
def eval_(
    args: Annotated[list[str], typer.Argument(help="problem=NAME and the program FILE")],
) -> None:
    """Evaluate one program file through the sandbox and scorer; print status and metrics as JSON."""
    problem_name = next((a.split("=", 1)[1] for a in args if a.startswith("problem=")), None)
    files = [a for a in args if not a.startswith("problem=")]
    if problem_name is None or len(files) != 1:
        raise UserError("eval: usage: evolve eval problem=NAME FILE")
    path = Path(files[0])
    if not path.is_file():
        raise UserError(f"FILE: no such file: {path}")
    problem = load_problem(problem_name)
    from evaluators.local import LocalEvaluator

    code = path.read_text()

    async def go() -> str:
        evaluator = LocalEvaluator(problem, EvaluatorConfig(concurrency=1))
        try:
            result = await evaluator.evaluate(code)
        finally:
            await evaluator.aclose()
        return json.dumps(result.model_dump(mode="json"), indent=2)

    sys.stdout.write(asyncio.run(go()) + "\n")


@cli.command()
def init(
    directory: Annotated[Path, typer.Argument(help="folder to create")],
    interactive: Annotated[
        bool, typer.Option("--interactive", help="an environment plays the candidate step by step")
    ] = False,
) -> None:
    """Scaffold a new problem that runs as created: evolve run problem=DIR."""
    scaffold_problem(directory, interactive)
    files = "problem.yaml, initial.py, " + ("environment.py" if interactive else "scorer.py")
    err.print(f"created {directory}/ ({files}); try: evolve run problem={directory}")


@cli.command()
def problems() -> None:
    """List the problems: direction, best-known value and its source."""
    out.print(report.problems_table())


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        cli()
    except UserError as exc:
        _fail(f"evolve: error: {exc}", 2)
    except LeaseHeld as exc:
        _fail(f"evolve: error: {exc}", 2)
    except RunAborted as exc:
        _fail(f"evolve: run stopped: {exc}", 1)
    except SQLAlchemyError as exc:
        detail = getattr(exc, "orig", None) or exc
        _fail(f"evolve: error: the database failed: {one_line(detail)}", 1)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"evolve: error: {where}{exc.strerror or one_line(exc)}", 1)
    except KeyboardInterrupt:
        _fail("evolve: interrupted", 130)


def _fail(line: str, code: int) -> None:
    sys.stderr.write(line.replace("\n", " ") + "\n")
    sys.exit(code)


if __name__ == "__main__":
    main()
