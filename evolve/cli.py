"""The ``evolve`` command line: run, resume, status, best, lineage, eval, init, problems."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from evolve import app as wiring
from evolve import report
from evolve.config import EvaluatorConfig, RunConfig
from evolve.controller import RunAborted, RunSummary
from evolve.database import Database
from evolve.display import LiveDisplay, fmt_score
from evolve.errors import UserError
from evolve.problem import Problem, load_problem
from evolve.scaffold import scaffold_problem

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


def _drive(config: RunConfig, problem: Problem, db: Database, run_id: str, run_dir: Path | None) -> None:
    display = LiveDisplay(err, f"evolve · {problem.name} · {run_id}")
    controller = wiring.build_controller(
        run_id=run_id, config=config, problem=problem, db=db, on_progress=display.update
    )
    where = str(run_dir) if run_dir is not None else run_id
    try:
        with display.running(config.progress):
            summary = asyncio.run(wiring.execute(controller))
    except KeyboardInterrupt:
        err.print(f"[yellow]interrupted[/]; continue with: evolve resume {where}")
        raise typer.Exit(130) from None
    finally:
        db.close()
    _print_summary(summary, problem, where)


def _print_summary(summary: RunSummary, problem: Problem, where: str) -> None:
    primary = problem.spec.metrics.primary
    best = summary.best.score(primary) if summary.best else None
    gain = f" ({best - summary.initial_score:+.6g} over the initial program)" if best is not None and summary.initial_score is not None else ""
    err.print(f"run [bold]{summary.run_id}[/] {summary.status}: {summary.reason}")
    err.print(f"best {primary}: [bold green]{fmt_score(best)}[/]{gain}")
    err.print(f"next: evolve status {where} | evolve best {where} -o best.py | evolve lineage {where}")


@cli.command()
def run(overrides: Overrides = None) -> None:
    """Start a discovery run (default: offline mutator, local sandbox, SQLite under runs/)."""
    config = wiring.compose_config(overrides or [])
    loc, problem, db = wiring.start_run(config)
    _drive(config, problem, db, loc.run_id, loc.run_dir)


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
    config, problem, database = wiring.reopen_run(loc, overrides or [], allow_changed_problem=allow_changed_problem)
    _drive(config, problem, database, loc.run_id, loc.run_dir)


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
    new_loc, problem, database = wiring.start_run(config)
    _drive(config, problem, database, new_loc.run_id, new_loc.run_dir)


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
        sys.stderr.write(f"evolve: error: {exc}\n")
        sys.exit(2)
    except RunAborted as exc:
        sys.stderr.write(f"evolve: run stopped: {exc}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
