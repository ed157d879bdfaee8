"""The terminal's views (rich): live progress of a run, and the tables of ``status``,
``lineage``, the run list and ``problems``. Pipes and files get :mod:`evolve.report`'s plain text.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from evolve.report import ProblemListing, failure_line, fmt_score, step_title
from evolve.runpage import ModelSummary
from evolve.runread import RunListing, RunStatus

if TYPE_CHECKING:
    from rich.live import Live

    from evolve.controller import Progress
    from evolve.records import Program

__all__ = ["LiveDisplay", "fmt_score", "lineage_view", "problems_view", "runs_view", "status_view"]


def progress_table(p: Progress, *, title: str) -> RenderableType:
    """One screen of run state: iteration, best, rate, failures by kind, archive fill."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", justify="right")
    table.add_column()
    gain = ""
    if p.best_score is not None and p.initial_score is not None:
        gain = f"  (initial {fmt_score(p.initial_score)}, {p.best_score - p.initial_score:+.6g})"
    from rich.progress_bar import ProgressBar

    bar = ProgressBar(total=max(1, p.max_iterations), completed=p.applied, width=50)
    table.add_row("progress", bar)
    table.add_row("iteration", f"{p.applied} / {p.max_iterations}   in flight {p.in_flight}")
    table.add_row("best", Text(fmt_score(p.best_score), style="bold green") + Text(gain))
    table.add_row("evaluations", f"{p.evaluations}   {p.evals_per_s:.1f}/s   elapsed {p.elapsed_s:.0f} s")
    fails = ", ".join(f"{k} {v}" for k, v in sorted(p.failures.items())) or "none"
    table.add_row("failures", fails)
    if p.coverage:  # strategies without a grid (greedy, random, pareto) report none
        table.add_row("archive", "  ".join(f"island {i}: {c:.0%}" for i, c in enumerate(p.coverage)))
    if p.cost_usd:
        table.add_row("cost", f"${p.cost_usd:.4f}")
    return Group(Text(title, style="bold"), table)


def progress_line(p: Progress) -> str:
    fails = sum(p.failures.values())
    return (
        f"iter {p.applied}/{p.max_iterations} best {fmt_score(p.best_score)} "
        f"evals {p.evaluations} ({p.evals_per_s:.1f}/s) failures {fails}"
    )


class LiveDisplay:
    """Receives controller snapshots; redraws in a terminal, prints a line now and then elsewhere."""

    def __init__(self, console: Console, title: str, *, line_every_s: float = 10.0) -> None:
        self._console = console
        self._title = title
        self._latest: Progress | None = None
        self._live: Live | None = None
        self._line_every = line_every_s
        self._last_line = 0.0

    def update(self, progress: Progress) -> None:
        self._latest = progress
        if self._live is not None:
            self._live.update(progress_table(progress, title=self._title))
        elif time.monotonic() - self._last_line >= self._line_every:
            self._last_line = time.monotonic()
            self._console.print(progress_line(progress), highlight=False)

    @contextmanager
    def running(self, enabled: bool = True) -> Iterator[LiveDisplay]:
        if not (enabled and self._console.is_terminal):
            yield self
            if self._latest is not None:
                self._console.print(progress_line(self._latest), highlight=False)
            return
        from rich.live import Live

        with Live(console=self._console, refresh_per_second=4, transient=False) as live:
            self._live = live
            try:
                yield self
            finally:
                self._live = None


def runs_view(runs: Sequence[RunListing], title: str) -> Table:
    table = Table(title=title)
    for col in ("run", "problem", "status", "iterations", "best", "updated"):
        table.add_column(col, overflow="fold")
    for r in runs:
        table.add_row(r.run, r.problem, r.status, str(r.iterations), fmt_score(r.best), f"{r.updated:%Y-%m-%d %H:%M}")
    return table


def status_view(s: RunStatus) -> RenderableType:
    """Everything a user checks first: progress, best, failures by kind and the latest ones with
    their messages, archive, cost."""
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold cyan", justify="right")
    head.add_column(overflow="fold")  # a long path wraps rather than being cut
    head.add_row("run", Text(f"{s.run_id}  [{s.state}] {s.stop_reason or ''}"))  # not markup
    head.add_row("problem", f"{s.problem}  ({s.problem_root})")
    head.add_row("iterations", f"{s.iterations} of {s.max_iterations}   seed {s.seed}")
    gain = f"  ({s.best_score - s.initial_score:+.6g})" if s.best_score is not None and s.initial_score is not None else ""
    head.add_row(f"best {s.primary}", f"{fmt_score(s.best_score)}{gain}   program {s.best_id or '-'}")
    head.add_row("initial", fmt_score(s.initial_score))
    head.add_row("search", s.strategy)
    if s.front:
        head.add_row("front", Text("\n".join(
            f"{pid}  " + "  ".join(f"{k}={v:.6g}" for k, v in values.items()) for pid, values in s.front
        )))
    if s.best_known is not None:
        head.add_row("best known", f"{s.best_known:.10g}  ({s.best_known_source})")
    head.add_row("started / updated", f"{s.created:%Y-%m-%d %H:%M:%S} / {s.updated:%Y-%m-%d %H:%M:%S}")

    outcomes = Table(title="outcomes")
    outcomes.add_column("status")
    outcomes.add_column("programs", justify="right")
    outcomes.add_column("share", justify="right")
    total = max(1, sum(s.outcomes.values()))
    for status, n in s.outcomes.items():
        style = "green" if status == "evaluated" else ("" if status == "duplicate" else "red")
        outcomes.add_row(Text(status, style=style), str(n), f"{n / total:.0%}")

    islands = Table(title="archive (cells ever occupied)")
    islands.add_column("island")
    islands.add_column("cells", justify="right")
    islands.add_column("best", justify="right")
    for i in s.islands:
        islands.add_row(str(i.island), f"{i.cells} / {i.of_cells}", fmt_score(i.best))

    parts: list[RenderableType] = [Panel(head, title="evolve status"), outcomes, islands, _usage_tables(s.models)]
    if s.llm_failures:
        parts.append(_failures_table(s.llm_failures))
    if s.recent_failures:
        recent = Table(title="recent failures (evolve show RUN ITERATION for the whole text)")
        recent.add_column("iteration", justify="right")
        recent.add_column("status")
        recent.add_column("message", overflow="fold")
        for f in s.recent_failures:
            recent.add_row(str(f.iteration), f.status, failure_line(f.message))
        parts.append(recent)
    return Group(*parts)


def _usage_tables(models: Sequence[ModelSummary]) -> Group:
    """Per model: its calls (errors, retried attempts, tokens, cost, latency), then the children
    made from its replies (how many failed, how many beat their parent). Two tables, so that
    every figure fits an 80-column terminal."""
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


def _failures_table(failures: Sequence[dict[str, object]]) -> Table:
    """Model call failures by kind: attempts retried, and calls that failed in the end."""
    table = Table(title="model call failures")
    table.add_column("model", no_wrap=True)
    table.add_column("kind")
    table.add_column("retried", justify="right")
    table.add_column("failed calls", justify="right")
    for f in failures:
        table.add_row(str(f["model"]), str(f["kind"]), str(f["retried"]), str(f["failed"]))
    return table


def _count(n: int) -> str:
    v = float(n)
    return f"{v / 1e6:.1f}M" if v >= 1e6 else f"{v / 1e3:.0f}k" if v >= 1e4 else f"{v:.0f}"


def lineage_view(chain: Sequence[Program], primary: str, *, diffs: bool) -> list[RenderableType]:
    from rich.syntax import Syntax

    views: list[RenderableType] = [Text(f"lineage: {len(chain)} programs, initial -> selected", style="bold")]
    prev: Program | None = None
    for p in chain:
        title = step_title(p, prev, primary)
        if diffs and p.diff:
            views.append(Panel(Syntax(p.diff.rstrip(), "diff", theme="ansi_dark"), title=title, title_align="left"))
        else:
            views.append(Text(title))
        prev = p
    return views


def problems_view(problems: Sequence[ProblemListing]) -> Table:
    table = Table(title="problems")
    for col in ("name", "direction", "best known", "source", "scoring", "folder"):
        table.add_column(col, overflow="fold")
    for p in problems:
        table.add_row(
            p.name, p.direction or "[red]invalid[/]", "-" if p.best_known is None else f"{p.best_known:.10g}",
            p.error or p.source or "-", p.scoring, p.folder,
        )
    return table
