"""The read-only commands: status (and the run list), best, lineage, show, export, problems.

They open the database read-only and read it alone (the problem's spec is stored with the run).
To a terminal they print rich tables; to a pipe or a file, plain and whole text (no boxes,
nothing cut); with ``--json``, JSON.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from evolve.errors import UserError

if TYPE_CHECKING:
    from evolve.locate import RunLocation
    from evolve.runread import Reader

DbOpt = Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL of the run's database (default: the run folder's SQLite file)")]
RunsDir = Annotated[str, typer.Option("--runs-dir", help="folder that holds run folders")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
RunArg = Annotated[str, typer.Argument(help="run folder or name under runs/ (with --db: the run's id)")]


def _terminal() -> bool:
    return sys.stdout.isatty()


def _print_rich(renderable: object) -> None:
    from rich.console import Console

    Console().print(renderable)


@contextmanager
def _reading(run: str, db: str | None, runs_dir: str) -> Iterator[tuple[RunLocation, Reader]]:
    from evolve.locate import locate_run
    from evolve.runread import open_reader

    loc = locate_run(run, db, runs_dir)
    database = open_reader(loc.db_url)
    try:
        yield loc, database
    finally:
        database.close()


def status(
    run: Annotated[str | None, typer.Argument(help="run folder or name; none lists the runs (of --runs-dir, or of --db)")] = None,
    db: DbOpt = None,
    runs_dir: RunsDir = "runs",
    html: Annotated[Path | None, typer.Option("--html", help="also write a page: score chart, archive maps, score against spend")] = None,
    json_: JsonOpt = False,
) -> None:
    """Show a run: progress, best program, outcomes, the latest failures with their messages, archive, model usage, history."""
    from evolve import report, runread

    if html is not None and run is None:
        raise UserError("--html needs a RUN")
    if run is None:
        _list_runs(db, Path(runs_dir), json_)
        return
    with _reading(run, db, runs_dir) as (loc, database):
        view = runread.run_status(database, loc.run_id)
        if json_:
            sys.stdout.write(report.to_json(view))
        elif _terminal():
            from evolve.display import status_view

            _print_rich(status_view(view))
        else:
            sys.stdout.write(report.status_text(view))
        if html is not None:
            html.write_text(report.run_html(database, loc.run_id))
            sys.stderr.write(f"wrote {html}\n")


def _list_runs(db_url: str | None, runs_dir: Path, json_: bool) -> None:
    from evolve import report, runread

    sources = [(db_url, db_url)] if db_url is not None else report.list_run_folders(runs_dir)
    runs = []
    for url, where in sources:
        try:
            database = runread.open_reader(url)
            try:
                runs.extend(runread.list_runs(database, where))
            finally:
                database.close()
        except Exception as exc:  # one corrupt run folder does not hide the others
            if db_url is not None:
                raise
            runs.append(runread.unreadable_listing(where, exc))
    if json_:
        sys.stdout.write(report.to_json(runs))
    elif _terminal():
        from evolve.display import runs_view

        _print_rich(runs_view(runs, f"runs in {db_url or str(runs_dir) + '/'}"))
    else:
        sys.stdout.write(report.runs_text(runs))


def best(
    run: RunArg,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="write the program here (default: stdout)")] = None,
    db: DbOpt = None,
    runs_dir: RunsDir = "runs",
    json_: JsonOpt = False,
) -> None:
    """Write the best program of a run."""
    from evolve import report, runread

    with _reading(run, db, runs_dir) as (loc, database):
        program, primary = runread.best_of(database, loc.run_id)
    assert program.code is not None
    if json_:
        sys.stdout.write(report.to_json({"run_id": loc.run_id, "primary": primary,
                                         "score": program.score(primary), "program": program}))
    elif output is None:
        sys.stdout.write(program.code)
    else:
        output.write_text(program.code)
    sys.stderr.write(f"{primary} = {report.fmt_score(program.score(primary))} (program {program.id}, iteration {program.iteration})\n")


def lineage(
    run: RunArg,
    program: Annotated[str | None, typer.Argument(help="program id, id prefix or iteration (default: the best)")] = None,
    db: DbOpt = None,
    runs_dir: RunsDir = "runs",
    diffs: Annotated[bool, typer.Option("--diffs/--no-diffs", help="show each step's diff")] = True,
    html: Annotated[Path | None, typer.Option("--html", help="also write a browsable HTML page")] = None,
    json_: JsonOpt = False,
) -> None:
    """Show how a program descended from the initial one: each step's score change and diff (piped: unified diffs that patch applies in order)."""
    from evolve import report, runread

    with _reading(run, db, runs_dir) as (loc, database):
        chain, primary, _maximize = runread.lineage_of(database, loc.run_id, program)
    if json_:
        sys.stdout.write(report.to_json(report.lineage_json(loc.run_id, chain, primary)))
    elif _terminal():
        from rich.console import Console

        from evolve.display import lineage_view

        console = Console()
        for renderable in lineage_view(chain, primary, diffs=diffs):
            console.print(renderable)
    else:
        sys.stdout.write(report.lineage_text(chain, primary, diffs=diffs))
    if html is not None:
        html.write_text(report.lineage_html(chain, primary, run_id=loc.run_id))
        sys.stderr.write(f"wrote {html}\n")


def show(
    run: RunArg,
    program: Annotated[str | None, typer.Argument(help="program id, id prefix or iteration number (default: the best; search=pareto: the front's best by the primary metric, with the front listed)")] = None,
    db: DbOpt = None,
    runs_dir: RunsDir = "runs",
    json_: JsonOpt = False,
) -> None:
    """Show one program: code, status, metrics, error text, feedback, diff against its parent, its model call's prompt and reply, its children; for a pareto run, whether it is on the front."""
    from evolve import report, runread

    with _reading(run, db, runs_dir) as (loc, database):
        detail = runread.program_detail(database, loc.run_id, program)
    sys.stdout.write(report.to_json(report.program_json(loc.run_id, detail)) if json_ else report.program_text(detail))


def export(
    run: RunArg,
    format_: Annotated[str, typer.Option("--format", help="jsonl or csv")] = "jsonl",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="write here (default: stdout)")] = None,
    db: DbOpt = None,
    runs_dir: RunsDir = "runs",
) -> None:
    """Write one row per program (lineage, status, score, metrics, error, model, tokens, cost, code) as JSON lines or CSV."""
    from evolve import export as exporting
    from evolve import runread

    if format_ not in ("jsonl", "csv"):
        raise UserError(f"--format: jsonl or csv, got '{format_}'")
    with _reading(run, db, runs_dir) as (loc, database):
        rows = runread.export_rows(database, loc.run_id)
    text = exporting.to_jsonl(rows) if format_ == "jsonl" else exporting.to_csv(rows)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        sys.stderr.write(f"wrote {len(rows)} programs to {output}\n")


def problems(json_: JsonOpt = False) -> None:
    """List the problems: direction, metric, best-known value and its source."""
    from evolve import report

    listed = report.problem_listings()
    if json_:
        sys.stdout.write(report.to_json(listed))
    elif _terminal():
        from evolve.display import problems_view

        _print_rich(problems_view(listed))
    else:
        sys.stdout.write(report.problems_text(listed))


def register(app: typer.Typer) -> None:
    """Add these commands to the ``evolve`` app."""
    app.command()(status)
    app.command()(best)
    app.command()(lineage)
    app.command()(show)
    app.command()(export)
    app.command()(problems)
