"""The ``evolve`` command line: run, resume, replay, check, eval, init here; the read-only
commands (status, best, lineage, show, export, problems) in :mod:`evolve.cli_views`.

Each command imports what it needs when it runs, so that ``--help`` and the read-only commands
answer at once (the model SDKs alone take seconds to import).
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from evolve import cli_views
from evolve.errors import UserError, one_line

if TYPE_CHECKING:
    from rich.console import Console

    from evolve.app import OpenRun
    from evolve.config import RunConfig
    from evolve.controller import RunSummary
    from evolve.problem import Problem


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
    rich_markup_mode=None,  # plain click help: wrapped to the terminal, never cut
    help="LLM-driven evolutionary algorithm discovery.",
)

Overrides = Annotated[list[str] | None, typer.Argument(help="Hydra overrides, e.g. problem=circle_packing max_iterations=300")]
DbOpt = cli_views.DbOpt
RunsDir = cli_views.RunsDir


def _version(value: bool) -> None:
    if value:
        from evolve import __version__

        sys.stdout.write(f"evolve {__version__}\n")
        raise typer.Exit()


@cli.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")] = False,
) -> None:
    """LLM-driven evolutionary algorithm discovery."""


def _err() -> Console:
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)  # a long line stays one line: commands copy whole


class Terminated(Exception):
    """SIGTERM arrived while the run was starting (before its event loop handles it)."""


def _terminate(_signum: int, _frame: object) -> None:
    raise Terminated


def _drive(opened: OpenRun) -> RunSummary:
    """Run a held run to its end; Ctrl-C and SIGTERM stop it cleanly (``interrupted``, resumable).
    A fresh run whose start fails is removed again (see :func:`evolve.app.run_held`)."""
    import asyncio

    from evolve import app as wiring
    from evolve.display import LiveDisplay

    err = _err()
    config, problem, loc = opened.config, opened.problem, opened.loc
    where = str(loc.run_dir) if loc.run_dir is not None else loc.run_id
    display = LiveDisplay(err, f"evolve · {problem.name} · {loc.run_id}")
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        with display.running(config.progress):
            summary = asyncio.run(wiring.run_held(opened, on_progress=display.update, started_at=_STARTED))
    except (KeyboardInterrupt, Terminated, asyncio.CancelledError) as exc:
        if not opened.closed:  # stopped before the run's loop began
            opened.discard() if opened.fresh else opened.close()
        how = "interrupted" if isinstance(exc, KeyboardInterrupt) else "terminated (SIGTERM)"
        if opened.discarded:
            err.print(f"[yellow]{how}[/] during start-up; nothing was kept")
        else:
            err.print(f"[yellow]{how}[/]; continue with: evolve resume {where}", highlight=False)
        raise typer.Exit(130 if isinstance(exc, KeyboardInterrupt) else 143) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    _print_summary(summary, problem, where)
    return summary


def _start(config: RunConfig, overrides: list[str]) -> OpenRun:
    """Create a new run; Ctrl-C or SIGTERM while creating it leaves nothing behind."""
    from evolve import app as wiring

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return wiring.start_run(config, overrides=overrides)
    except (KeyboardInterrupt, Terminated) as exc:
        _err().print("[yellow]interrupted[/] during start-up; nothing was kept")
        raise typer.Exit(130 if isinstance(exc, KeyboardInterrupt) else 143) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _print_summary(summary: RunSummary, problem: Problem, where: str) -> None:
    from evolve.report import fmt_score

    err = _err()
    primary = problem.spec.metrics.primary
    best = summary.best.score(primary) if summary.best else None
    gain = f" ({best - summary.initial_score:+.6g} over the initial program)" if best is not None and summary.initial_score is not None else ""
    err.print(f"run [bold]{summary.run_id}[/] {summary.status}: {summary.reason}")
    err.print(f"best {primary}: [bold green]{fmt_score(best)}[/]{gain}")
    err.print(f"next: evolve status {where} | evolve best {where} -o best.py | evolve lineage {where}", highlight=False)


def _note(config: RunConfig) -> None:
    from evolve.overrides import concurrency_note

    note = concurrency_note(config)
    if note:
        sys.stderr.write(f"evolve: note: {note}\n")


@cli.command()
def run(
    overrides: Overrides = None,
    cfg: Annotated[str | None, typer.Option("--cfg", help="'job': print the resolved config and exit")] = None,
    multirun: Annotated[bool, typer.Option("-m", "--multirun", help="a run for each combination of comma-separated values, e.g. seed=0,1,2")] = False,
) -> None:
    """Start a discovery run (default: offline mutator, local sandbox, SQLite under runs/)."""
    from evolve import app as wiring
    from evolve import overrides as hydra_args

    args = hydra_args.problem_shorthand(overrides or [])
    if cfg is not None and cfg != "job":
        raise UserError(f"--cfg: only 'job' (the run's resolved config) is printed, got '{cfg}'")
    jobs = hydra_args.sweep(args) if multirun else [args]
    for k, job in enumerate(jobs):
        if len(jobs) > 1:
            sys.stderr.write(f"evolve: job {k + 1} of {len(jobs)}: {' '.join(job)}\n")
        config = wiring.compose_config(job)
        if cfg is not None:
            sys.stdout.write(hydra_args.config_yaml(config))
            continue
        _note(config)
        _drive(_start(config, job))


@cli.command()
def resume(
    run: Annotated[str, typer.Argument(help="run folder or name under runs/")],
    overrides: Overrides = None,
    db: DbOpt = None,
    runs_dir: RunsDir = "runs",
    allow_changed_problem: Annotated[bool, typer.Option(help="resume even if the problem's files changed")] = False,
) -> None:
    """Continue a stopped, interrupted or killed run where it stopped (overrides such as max_iterations=500 or llm=openai allowed, kept in the run's history)."""
    from evolve import app as wiring

    loc = wiring.locate_run(run, db, runs_dir)
    opened = wiring.reopen_run(loc, overrides or [], allow_changed_problem=allow_changed_problem)
    _note(opened.config)
    _drive(opened)


@cli.command()
def replay(
    run: Annotated[str, typer.Argument(help="run folder or name under runs/ to reproduce")],
    overrides: Overrides = None,
    db: DbOpt = None,
    runs_dir: RunsDir = "runs",
) -> None:
    """Reproduce a recorded run exactly from its stored model replies: no API, no cost."""
    from evolve import app as wiring

    loc = wiring.locate_run(run, db, runs_dir)
    config = wiring.replay_config(loc, overrides or [])
    opened = _start(config, [f"replay={run}", *(overrides or [])])
    _drive(opened)
    _err().print(wiring.compare_replay(loc, opened.loc), highlight=False)


@cli.command()
def check(
    overrides: Overrides = None,
    timeout: Annotated[float, typer.Option(help="seconds each model has to answer its tiny request")] = 60.0,
) -> None:
    """Preflight before spending money: the problem loads, the initial program scores the same twice, each model answers, the prompt fits its context, the cost estimate."""
    import asyncio

    from evolve import app as wiring
    from evolve.overrides import problem_shorthand
    from evolve.preflight import preflight

    config = wiring.compose_config(problem_shorthand(overrides or []))
    report = asyncio.run(preflight(config, model_timeout_s=timeout))
    for line in report.lines:
        sys.stdout.write(line + "\n")
    for failure in report.failures:
        sys.stderr.write(f"evolve: check failed: {failure}\n")
    if report.failures:
        raise typer.Exit(1)


@cli.command("eval")
def eval_(
    args: Annotated[list[str], typer.Argument(help="problem=NAME and the program FILE")],
) -> None:
    """Evaluate one program file through the sandbox and scorer; print status and metrics as JSON."""
    import asyncio
    import json

    from evaluators.local import LocalEvaluator
    from evolve.config import EvaluatorConfig
    from evolve.problem import load_problem

    problem_name = next((a.split("=", 1)[1] for a in args if a.startswith("problem=")), None)
    files = [a for a in args if not a.startswith("problem=")]
    if problem_name is None or len(files) != 1:
        raise UserError("eval: usage: evolve eval problem=NAME FILE")
    path = Path(files[0])
    if not path.is_file():
        raise UserError(f"FILE: no such file: {path}")
    problem = load_problem(problem_name)
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
    from evolve.scaffold import scaffold_problem

    scaffold_problem(directory, interactive)
    files = "problem.yaml, initial.py, " + ("environment.py" if interactive else "scorer.py")
    sys.stderr.write(f"created {directory}/ ({files}); try: evolve run problem={directory}\n")


cli_views.register(cli)


@cli.command()
def ui(
    runs_dir: RunsDir = "runs",
    db: Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL of a database of runs (instead of --runs-dir)")] = None,
    host: Annotated[str, typer.Option("--host", help="address to listen on; beyond loopback a token is required")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port to listen on (0: any free one)")] = 8765,
) -> None:
    """Browse runs in a web browser, live while they run: charts, archive maps, lineage, programs."""
    from evolve.ui.catalog import RunCatalog
    from evolve.ui.serve import serve

    if db is None and not Path(runs_dir).is_dir():
        raise UserError(f"--runs-dir: no such folder: {runs_dir}")
    catalog = RunCatalog(db_url=db) if db is not None else RunCatalog(runs_dir=Path(runs_dir))
    catalog.run_ids()  # a database that cannot be read fails here, in one line, not on a page
    err = _err()
    serve(catalog, host=host, port=port, announce=lambda line: err.print(line, soft_wrap=True, markup=False, highlight=False))


@cli.command()
def ctl(
    run: Annotated[str, typer.Argument(help="run folder or name under runs/")],
    action: Annotated[str, typer.Argument(help="pause | resume | stop | budget | inject")],
    args: Annotated[list[str] | None, typer.Argument(help="budget: LIMIT=VALUE...; inject: FILE")] = None,
    db: DbOpt = None,
    runs_dir: RunsDir = "runs",
) -> None:
    """Send a command to a run through its database (recorded in the run's history; the
    run's controller applies it within a second and records the outcome)."""
    import socket

    from evolve import app as wiring
    from evolve.database.commands import KINDS, CommandLog, budget_args, parse_command
    from evolve.database.store import make_engine

    if action not in KINDS:
        raise UserError(f"ACTION: one of {', '.join(KINDS)}, got {action!r}")
    rest = args or []
    if action == "budget":
        values = budget_args(rest)
    elif action == "inject":
        if len(rest) != 1:
            raise UserError("inject: usage: evolve ctl RUN inject FILE")
        path = Path(rest[0])
        if not path.is_file():
            raise UserError(f"FILE: no such file: {path}")
        try:
            values = {"code": path.read_text(encoding="utf-8")}
        except UnicodeDecodeError:
            raise UserError(f"FILE: not UTF-8 text: {path}") from None
    else:
        if rest:
            raise UserError(f"{action}: takes no arguments, got {' '.join(rest)}")
        values = {}
    command = parse_command(action, values)
    loc = wiring.locate_run(run, db, runs_dir)
    database = wiring.open_db(loc)
    try:
        if database.get_run(loc.run_id) is None:
            raise UserError(f"RUN: no run '{loc.run_id}' in this database")
    finally:
        database.close()
    engine = make_engine(loc.db_url)
    try:
        number = CommandLog(engine).record(loc.run_id, command, source=f"cli on {socket.gethostname()}")
    finally:
        engine.dispose()
    _err().print(f"sent command #{number} ({action}) to run {loc.run_id}; a live run applies it within a second (its outcome: evolve ui, or the run_commands table)", soft_wrap=True, markup=False)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        cli()
    except UserError as exc:
        _fail(f"evolve: error: {exc}", 2)
    except KeyboardInterrupt:
        _fail("evolve: interrupted", 130)
    except Exception as exc:
        _fail(*_one_line_failure(exc))
    finally:
        # The process ends now: spare it the interpreter's last collection over the whole heap
        # (0.15-0.25 s with the SDK's and SQLAlchemy's objects loaded). Objects are still
        # released; only the cycle search is skipped.
        gc.freeze()


def _one_line_failure(exc: Exception) -> tuple[str, int]:
    """The line and exit code for a failure the user must see as one line, never a traceback:
    a held run, a run that had to stop, a database or file system that failed. Anything
    else is a bug in evolve, and its traceback is shown."""
    from sqlalchemy.exc import SQLAlchemyError

    from evolve.controller import RunAborted
    from evolve.database.lease import LeaseHeld

    if isinstance(exc, LeaseHeld):
        return f"evolve: error: {exc}", 2
    if isinstance(exc, RunAborted):
        return f"evolve: run stopped: {exc}", 1
    if isinstance(exc, SQLAlchemyError):
        return f"evolve: error: the database failed: {one_line(getattr(exc, 'orig', None) or exc)}", 1
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"evolve: error: {where}{exc.strerror or one_line(exc)}", 1
    raise exc


def _fail(line: str, code: int) -> None:
    sys.stderr.write(line.replace("\n", " ") + "\n")
    sys.exit(code)


if __name__ == "__main__":
    main()
