"""Live progress and tables for the terminal (rich)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from evolve.controller import Progress


def fmt_score(value: float | None) -> str:
    return "-" if value is None else f"{value:.10g}"


def progress_table(p: Progress, *, title: str) -> RenderableType:
    """One screen of run state: iteration, best, rate, failures by kind, archive fill."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", justify="right")
    table.add_column()
    gain = ""
    if p.best_score is not None and p.initial_score is not None:
        gain = f"  (initial {fmt_score(p.initial_score)}, {p.best_score - p.initial_score:+.6g})"
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
        with Live(console=self._console, refresh_per_second=4, transient=False) as live:
            self._live = live
            try:
                yield self
            finally:
                self._live = None
