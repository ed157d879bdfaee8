"""Read-only views of runs: status tables, the best program, lineage (terminal and HTML)."""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError

from evolve.controller import HEARTBEAT_S
from evolve.database import Database
from evolve.database.lease import holder_alive
from evolve.database.models import RunRow
from evolve.display import fmt_score
from evolve.errors import UserError, one_line
from evolve.problem import BestKnown, Problem, load_problem, problems_dirs
from evolve.records import Program, Status
from evolve.runpage import ModelSummary, run_page
from evolve.search.pareto import front_of, objective_vector


def _run_row(db: Database, run_id: str) -> RunRow:
    row = db.get_run(run_id)
    if row is None:
        raise UserError(f"RUN: no run '{run_id}' in this database")
    return row


def run_problem(db: Database, run_id: str) -> Problem:
    row = _run_row(db, run_id)
    try:
        return load_problem(row.problem_root)
    except UserError as exc:
        raise UserError(f"run '{run_id}': cannot load its problem: {exc}") from exc


def run_state(row: RunRow, lease: dict[str, Any] | None = None) -> str:
    """The stored status, with ``running`` checked against the run's lease, which the live
    controller's heartbeat renews (a killed run's lease expires)."""
    if row.status != "running":
        return row.status
    now = datetime.now(UTC)
    if lease is not None:
        expires = lease["expires_at"] if lease["expires_at"].tzinfo else lease["expires_at"].replace(tzinfo=UTC)
        if expires > now and holder_alive(lease["host"], lease["pid"], lease["started"]):
            return f"running: pid {lease['pid']} on {lease['host']}"
    last = row.updated_at if row.updated_at.tzinfo else row.updated_at.replace(tzinfo=UTC)
    silent = (now - last).total_seconds()
    if lease is None and silent < 6 * HEARTBEAT_S:
        return "running"  # a database from before leases
    return f"stale (no heartbeat for {silent / 60:.0f} min: killed? resume it)"


def best_of(db: Database, run_id: str) -> tuple[Program, str]:
    problem = run_problem(db, run_id)
    best = db.best_program(run_id, maximize=problem.maximize)
    if best is None:
        raise UserError(f"run '{run_id}' has no evaluated program yet")
    return best, problem.spec.metrics.primary


def runs_table(runs_dir: Path) -> RenderableType:
    table = Table(title=f"runs in {runs_dir}/")
    for col in ("run", "problem", "status", "iterations", "best", "updated"):
        table.add_column(col)
    for db_file in sorted(runs_dir.glob("*/evolve.db")):
        try:
            rows = _run_rows(db_file)
        except (UserError, SQLAlchemyError) as exc:  # one corrupt run does not hide the others
            detail = getattr(exc, "orig", None) or exc
            rows = [(db_file.parent.name, "-", f"unreadable: {one_line(detail)}", "-", "-", "-")]
        for cells in rows:
            table.add_row(*cells)
    return table


def _run_rows(db_file: Path) -> list[tuple[str, ...]]:
    """The runs-table rows of one run folder's database."""
    db = Database.open(f"sqlite:///{db_file.resolve()}")
    rows: list[tuple[str, ...]] = []
    try:
        for row in db.list_runs():
            counts = db.status_counts(row.id)
            try:
                program, primary = best_of(db, row.id)
                best = fmt_score(program.score(primary))
            except UserError:
                best = "-"
            iters = max(0, sum(counts.values()) - 1)
            rows.append((row.id, row.problem, run_state(row, db.lease_holder(row.id)), str(iters), best, f"{row.updated_at:%Y-%m-%d %H:%M}"))
    finally:
        db.close()
    return rows


def run_status(db: Database, run_id: str) -> RenderableType:
    """Everything a user checks first: progress, best, failures by kind, archive, cost."""
    row = _run_row(db, run_id)
    problem = run_problem(db, run_id)
    primary = problem.spec.metrics.primary
    programs = db.programs(run_id)
    by_iter = {p.iteration: p for p in programs}
    best = db.best_program(run_id, maximize=problem.maximize)
    initial = by_iter.get(0)

    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold cyan", justify="right")
    head.add_column(overflow="fold")  # a long path wraps rather than being cut
    head.add_row("run", Text(f"{row.id}  [{run_state(row, db.lease_holder(run_id))}] {row.stop_reason or ''}"))
    head.add_row("problem", f"{row.problem}  ({row.problem_root})")
    head.add_row("iterations", f"{max(0, len(programs) - 1)} of {row.config.get('max_iterations')}   seed {row.seed}")
    init_score = initial.score(primary) if initial else None
    best_score = best.score(primary) if best else None
    gain = f"  ({best_score - init_score:+.6g})" if best_score is not None and init_score is not None else ""
    head.add_row(f"best {primary}", f"{fmt_score(best_score)}{gain}   program {best.id if best else '-'}")
    head.add_row("initial", fmt_score(init_score))
    strategy = str(row.config.get("search", {}).get("strategy", "map_elites"))
    head.add_row("search", strategy)
    if strategy == "pareto" and problem.spec.metrics.objectives:
        objectives = problem.spec.metrics.objectives
        front = front_of(programs, objectives)
        head.add_row("front", Text("\n".join(
            f"{p.id}  " + "  ".join(f"{k}={objective_vector(p, {k: 'maximize'})[0]:.6g}" for k in objectives)
            for p in front
        )))
    if problem.spec.best_known:
        head.add_row("best known", f"{problem.spec.best_known.value:.10g}  ({problem.spec.best_known.source})")
    head.add_row("started / updated", f"{row.created_at:%Y-%m-%d %H:%M:%S} / {row.updated_at:%Y-%m-%d %H:%M:%S}")

    counts = Counter(p.status.value for p in programs if p.iteration > 0)
    outcomes = Table(title="outcomes")
    outcomes.add_column("status")
    outcomes.add_column("programs", justify="right")
    outcomes.add_column("share", justify="right")
    total = max(1, sum(counts.values()))
    for st in Status:
        if counts.get(st.value):
            style = "red" if st.is_failure else ("green" if st is Status.EVALUATED else "")
            outcomes.add_row(Text(st.value, style=style), str(counts[st.value]), f"{counts[st.value] / total:.0%}")

    islands = Table(title="archive (cells ever occupied)")
    islands.add_column("island")
    islands.add_column("cells", justify="right")
    islands.add_column("best", justify="right")
    n_islands = int(row.config.get("search", {}).get("islands", 1)) if strategy == "map_elites" else 1
    n_cells = math.prod(f.bins for f in problem.spec.features) if problem.spec.features else 1
    for i in range(n_islands):
        mine = [p for p in programs if p.status is Status.EVALUATED and (p.island == i or p.iteration == 0)]
        cells = {p.cell for p in mine}
        scores = [s for p in mine if (s := p.score(primary)) is not None]
        top = (max(scores) if problem.maximize else min(scores)) if scores else None
        islands.add_row(str(i), f"{len(cells)} / {n_cells}", fmt_score(top))

    parts: list[RenderableType] = [Panel(head, title="evolve status"), outcomes, islands, _usage_tables(model_summaries(db, run_id, programs, problem))]
    failures = db.llm_failures(run_id)
    if failures:
        parts.append(_failures_table(failures))
    return Group(*parts)


def model_summaries(db: Database, run_id: str, programs: Sequence[Program], problem: Problem) -> list[ModelSummary]:
    """Per model: its calls, and the children made from its replies (failed, beat their parent)."""
    primary = problem.spec.metrics.primary
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
                improved=sum(1 for c in made if _improves(c, by_id.get(c.parent_id or ""), primary, problem)),
            )
        )
    return out


def _usage_tables(models: Sequence[ModelSummary]) -> Group:
    """Per model: its calls (errors, retried attempts, tokens, cost, latency), then the children
    made from its replies (how many failed, how many beat their parent). Two tables, so that
    every figure fits an 80-column terminal, or a pipe, which rich gives 80 columns."""
    calls = Table(title="model calls")
    calls.add_column("model", no_wrap=True)
    for col in ("calls", "errors", "retried", "tok in", "tok out", "cost $", "latency s"):
        calls.add_column(col, justify="right")
    children = Table(title="children by model")
    children.add_column("model", no_wrap=True)
    for col in ("children", "failed", "improved", "improved share"):
        children.add_column(col, justify="right")
    for m in models:
        calls.add_row(
            m.model, str(m.calls), str(m.errors), str(m.retried), _count(m.input_tokens),
            _count(m.output_tokens), f"{m.cost_usd:.3g}", f"{m.mean_latency_s:.2f}",
        )
        share = f"{m.improved / m.children:.0%}" if m.children else "-"
        children.add_row(m.model, str(m.children), str(m.failed), str(m.improved), share)
    return Group(calls, children)


def _failures_table(failures: list[dict[str, Any]]) -> Table:
    """Model call failures by kind: attempts retried, and calls that failed in the end."""
    table = Table(title="model call failures")
    table.add_column("model", no_wrap=True)
    table.add_column("kind")
    table.add_column("retried", justify="right")
    table.add_column("failed calls", justify="right")
    for f in failures:
        table.add_row(str(f["model"]), str(f["kind"]), str(f["retried"]), str(f["failed"]))
    return table


def _count(n: object) -> str:
    v = float(n or 0)  # type: ignore[arg-type]
    return f"{v / 1e6:.1f}M" if v >= 1e6 else f"{v / 1e3:.0f}k" if v >= 1e4 else f"{v:.0f}"


def _improves(child: Program, parent: Program | None, primary: str, problem: Problem) -> bool:
    cs, ps = child.score(primary), parent.score(primary) if parent else None
    return cs is not None and ps is not None and problem.is_better(cs, ps)


def lineage_of(db: Database, run_id: str, program: str | None) -> tuple[list[Program], str, bool]:
    problem = run_problem(db, run_id)
    primary = problem.spec.metrics.primary
    if program is None:
        target, _ = best_of(db, run_id)
    else:
        found = db.find_program(run_id, program)
        if found is None:
            raise UserError(f"PROGRAM: no single program matches '{program}' in run '{run_id}'")
        target = found
    return db.lineage(target.id), primary, problem.maximize


def _step_title(p: Program, prev: Program | None, primary: str) -> str:
    score = p.score(primary)
    prev_score = prev.score(primary) if prev else None
    delta = f" ({score - prev_score:+.6g})" if score is not None and prev_score is not None else ""
    outcome = fmt_score(score) if score is not None else p.status.value
    return f"iteration {p.iteration} · {p.id} · island {p.island} · {p.mode} · {primary} {outcome}{delta}"


def lineage_view(chain: list[Program], primary: str, *, diffs: bool) -> list[RenderableType]:
    views: list[RenderableType] = [Text(f"lineage: {len(chain)} programs, initial -> selected", style="bold")]
    prev: Program | None = None
    for p in chain:
        title = _step_title(p, prev, primary)
        if diffs and p.diff:
            views.append(Panel(Syntax(p.diff.rstrip(), "diff", theme="ansi_dark"), title=title, title_align="left"))
        else:
            views.append(Text(title))
        prev = p
    return views


def lineage_html(chain: list[Program], primary: str, *, run_id: str) -> str:
    """A self-contained page: the score along the lineage as a chart, each step's diff and code."""
    scores = [p.score(primary) for p in chain]
    pts = [(i, s) for i, s in enumerate(scores) if s is not None]
    svg = ""
    if len(pts) >= 2:
        lo, hi = min(s for _, s in pts), max(s for _, s in pts)
        span = (hi - lo) or 1.0
        w, h = 640, 200
        coords = " ".join(f"{20 + i * (w - 40) / (len(chain) - 1):.1f},{h - 20 - (s - lo) / span * (h - 40):.1f}" for i, s in pts)
        svg = (
            f'<svg width="{w}" height="{h}" role="img"><polyline fill="none" stroke="#2a7" stroke-width="2" points="{coords}"/>'
            f'<text x="4" y="14" font-size="12">{hi:.10g}</text><text x="4" y="{h - 4}" font-size="12">{lo:.10g}</text></svg>'
        )
    steps = []
    prev: Program | None = None
    for p in chain:
        title = html.escape(_step_title(p, prev, primary))
        diff = "".join(
            f'<span class="{ "add" if ln.startswith("+") else "del" if ln.startswith("-") else "" }">{html.escape(ln)}</span>\n'
            for ln in p.diff.splitlines()
        )
        steps.append(
            f"<section><h3>{title}</h3>"
            + (f"<details open><summary>diff</summary><pre>{diff}</pre></details>" if p.diff else "")
            + f"<details><summary>code</summary><pre>{html.escape(p.code or '')}</pre></details></section>"
        )
        prev = p
    style = (
        "body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em}"
        "pre{background:#f6f8fa;padding:.8em;overflow-x:auto;font-size:13px}"
        ".add{color:#116329;background:#dafbe1}.del{color:#82071e;background:#ffebe9}"
        "section{border-top:1px solid #ddd;padding-top:.5em}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>lineage · {html.escape(run_id)}</title>"
        f"<style>{style}</style></head><body><h1>Lineage of {html.escape(chain[-1].id if chain else '')}</h1>"
        f"<p>run {html.escape(run_id)} · {len(chain)} programs · {html.escape(primary)}</p>{svg}{''.join(steps)}</body></html>"
    )


def run_html(db: Database, run_id: str) -> str:
    """The run's page: score over iterations, the archive maps, what the model calls cost (see
    :mod:`evolve.runpage`)."""
    row = _run_row(db, run_id)
    islands = int(row.config.get("search", {}).get("islands", 1))
    programs, problem = db.programs(run_id), run_problem(db, run_id)
    return run_page(
        run_id, programs, problem, islands,
        spend=db.llm_spend(run_id), models=model_summaries(db, run_id, programs, problem),
    )


def _scoring_label(tolerance: str | None, best: BestKnown | None) -> str:
    """The tolerance the scorer allows, then any caveat the best-known value needs."""
    parts = [f"tolerance: {tolerance}" if tolerance else "", best.note if best and best.note else ""]
    return "; ".join(p for p in parts if p) or "-"


def problems_table() -> RenderableType:
    table = Table(title="problems")
    for col in ("name", "direction", "best known", "source", "scoring", "folder"):
        table.add_column(col, overflow="fold")
    seen: set[str] = set()
    for d in problems_dirs():
        for folder in sorted(p for p in d.iterdir() if (p / "problem.yaml").is_file()):
            if folder.name in seen:
                continue
            seen.add(folder.name)
            try:
                prob = load_problem(folder)
            except UserError as exc:
                table.add_row(folder.name, "[red]invalid[/]", "", str(exc), "", str(folder))
                continue
            bk = prob.spec.best_known
            table.add_row(
                prob.name, prob.spec.metrics.direction, f"{bk.value:.10g}" if bk else "-",
                bk.source if bk else "-", _scoring_label(prob.spec.tolerance, bk), str(folder),
            )
    return table
