"""A self-contained HTML page for a run: the score over time, how each island's archive filled,
and what the model calls cost.

No JavaScript and no external assets: SVG drawn from the database, so the page can be attached
to an issue or opened from a CI artifact.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from evolve.problem import Problem
from evolve.records import Program, Status

_W, _H, _PAD = 720, 240, 36


@dataclass(frozen=True)
class ModelSummary:
    """One model's calls in a run and the children made from its replies."""

    model: str
    calls: int
    errors: int  # calls that failed in the end
    retried: int  # failed attempts that were retried
    input_tokens: int
    output_tokens: int
    cost_usd: float
    mean_latency_s: float
    children: int
    failed: int  # children that failed (diff, run or score)
    improved: int  # children that beat their parent


def _best_so_far(programs: Sequence[Program], problem: Problem) -> list[tuple[int, float]]:
    primary = problem.spec.metrics.primary
    best: float | None = None
    points = []
    for p in programs:
        score = p.score(primary)
        if score is not None and (best is None or problem.is_better(score, best)):
            best = score
            points.append((p.iteration, score))
    if points and programs:
        points.append((programs[-1].iteration, points[-1][1]))
    return points


def score_chart(programs: Sequence[Program], problem: Problem) -> str:
    """Every evaluated program as a dot, the best so far as a step line, over iterations."""
    primary = problem.spec.metrics.primary
    dots = [(float(p.iteration), s) for p in programs if (s := p.score(primary)) is not None]
    steps = [(float(i), s) for i, s in _best_so_far(programs, problem)]
    last = max(1, programs[-1].iteration) if programs else 1
    return _chart(
        dots, steps, problem, x_max=float(last), x_end=f"iteration {last}", label="score over iterations",
        caption=f"{primary}: dots every program (worst 5% clipped to the edge), line the best so far",
    )


def spend_chart(programs: Sequence[Program], problem: Problem, spend: Sequence[tuple[int, float, int]]) -> str:
    """The best score against what the model calls had cost by then: in dollars, or in tokens
    when the run's models have no price."""
    cost = math.fsum(c for _, c, _ in spend)
    tokens = sum(t for _, _, t in spend)
    if cost <= 0 and tokens <= 0:
        return "<p>the model calls of this run cost nothing (the offline mutator, or no calls)</p>"
    by_iteration: dict[int, float] = {}
    for iteration, c, t in spend:
        by_iteration[iteration] = by_iteration.get(iteration, 0.0) + (c if cost > 0 else float(t))
    last = max([p.iteration for p in programs] + list(by_iteration), default=0)
    spent = list(accumulate(by_iteration.get(i, 0.0) for i in range(last + 1)))  # iterations 0..i
    total = spent[-1]
    primary = problem.spec.metrics.primary
    dots = [(spent[p.iteration], s) for p in programs if (s := p.score(primary)) is not None]
    steps = [(spent[i], s) for i, s in _best_so_far(programs, problem)]
    unit = f"${total:.4g}" if cost > 0 else f"{total:,.0f} tokens"
    return _chart(
        dots, steps, problem, x_max=total or 1.0, x_end=unit, label="score against spend",
        caption=f"{primary} against {'dollars' if cost > 0 else 'tokens'} spent on model calls so far",
    )


def _chart(
    dots: Sequence[tuple[float, float]],
    steps: Sequence[tuple[float, float]],
    problem: Problem,
    *,
    x_max: float,
    x_end: str,
    label: str,
    caption: str,
) -> str:
    if len(dots) < 2:
        return "<p>not enough evaluated programs for a chart</p>"
    # the worst 5% (often near-zero failures of the idea) would flatten the rest: clip them
    fits = sorted(problem.fitness(s) for _, s in dots)
    floor = fits[len(fits) // 20]
    ends = [s for _, s in dots if problem.fitness(s) >= floor]
    lo, hi = min(ends), max(ends)
    span = (hi - lo) or 1.0

    def xy(x: float, s: float) -> tuple[float, float]:
        frac = min(1.0, max(0.0, (s - lo) / span))
        return _PAD + x / x_max * (_W - 2 * _PAD), _H - _PAD - frac * (_H - 2 * _PAD)

    circles = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="1.6" fill="#9ab"/>' for x, y in (xy(i, s) for i, s in dots)
    )
    path = []
    for k, (at, s) in enumerate(steps):
        x, y = xy(at, s)
        if k:
            path.append(f"H{x:.1f} V{y:.1f}")
        else:
            path.append(f"M{x:.1f} {y:.1f}")
    return (
        f'<svg width="{_W}" height="{_H}" role="img" aria-label="{html.escape(label)}">'
        f'<rect x="{_PAD}" y="{_PAD}" width="{_W - 2 * _PAD}" height="{_H - 2 * _PAD}" fill="none" stroke="#ccc"/>'
        f"{circles}"
        f'<path d="{" ".join(path)}" fill="none" stroke="#2a7" stroke-width="2"/>'
        f'<text x="4" y="{_PAD}" font-size="11">{hi:.8g}</text>'
        f'<text x="4" y="{_H - _PAD}" font-size="11">{lo:.8g}</text>'
        f'<text x="{_W - _PAD}" y="{_H - 8}" font-size="11" text-anchor="end">{html.escape(x_end)}</text>'
        f'<text x="{_PAD}" y="{_H - 8}" font-size="11">{html.escape(caption)}</text>'
        "</svg>"
    )


def archive_maps(programs: Sequence[Program], problem: Problem, islands: int) -> str:
    """Per island, the best fitness reached in each cell of the first two feature dimensions."""
    specs = problem.spec.features
    if len(specs) == 0:
        return "<p>the problem declares no feature dimensions: one cell per island</p>"
    xs = specs[0].bins
    ys = specs[1].bins if len(specs) > 1 else 1
    primary = problem.spec.metrics.primary
    maps = []
    for island in range(islands):
        cells: dict[tuple[int, int], float] = {}
        for p in programs:
            score = p.score(primary)
            if score is None or p.cell is None or not (p.island == island or p.iteration == 0):
                continue
            key = (p.cell[0], p.cell[1] if len(p.cell) > 1 else 0)
            fit = problem.fitness(score)
            cells[key] = max(fit, cells.get(key, fit))
        if not cells:
            continue
        lo, hi = min(cells.values()), max(cells.values())
        size = min(24, 240 // max(xs, ys))
        rects = []
        for (cx, cy), fit in cells.items():
            t = (fit - lo) / ((hi - lo) or 1.0)
            color = f"rgb({int(230 - 190 * t)},{int(240 - 90 * t)},{int(250 - 150 * t)})"
            value = fit if problem.maximize else -fit
            rects.append(
                f'<rect x="{cx * size}" y="{(ys - 1 - cy) * size}" width="{size - 1}" height="{size - 1}" '
                f'fill="{color}"><title>cell ({cx}, {cy}): {value:.8g}</title></rect>'
            )
        maps.append(
            f"<figure><svg width='{xs * size}' height='{ys * size}' style='background:#f4f4f4'>{''.join(rects)}</svg>"
            f"<figcaption>island {island}: {len(cells)} / {xs * ys} cells</figcaption></figure>"
        )
    axes = f"x: {html.escape(specs[0].name)}" + (f", y: {html.escape(specs[1].name)}" if len(specs) > 1 else "")
    return f"<p>{axes} (darker is better; hover a cell for its best value)</p><div class='maps'>{''.join(maps)}</div>"


def model_table(models: Sequence[ModelSummary]) -> str:
    """Per model: calls, tokens, cost, and what the cost bought (children that beat their parent;
    no price per improvement for a model without a price)."""
    if not models:
        return "<p>no model calls recorded</p>"
    head = "".join(
        f"<th>{h}</th>"
        for h in ("model", "calls", "errors", "tokens in", "tokens out", "cost $", "children", "improved",
                  "$ per improvement")
    )
    rows = "".join(
        f"<tr><td>{html.escape(m.model)}</td><td>{m.calls}</td><td>{m.errors}</td><td>{m.input_tokens:,}</td>"
        f"<td>{m.output_tokens:,}</td><td>{m.cost_usd:.4g}</td><td>{m.children}</td><td>{m.improved}</td>"
        f"<td>{f'{m.cost_usd / m.improved:.4g}' if m.improved and m.cost_usd > 0 else '-'}</td></tr>"
        for m in models
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def run_page(
    run_id: str,
    programs: Sequence[Program],
    problem: Problem,
    islands: int,
    *,
    spend: Sequence[tuple[int, float, int]] = (),
    models: Sequence[ModelSummary] = (),
) -> str:
    """The whole page. ``spend``: every model call as (iteration, cost in USD, tokens)."""
    counts = Counter(p.status.value for p in programs if p.iteration > 0)
    rows = "".join(
        f"<tr><td>{st.value}</td><td>{counts[st.value]}</td></tr>" for st in Status if counts.get(st.value)
    )
    style = (
        "body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em}"
        ".maps{display:flex;flex-wrap:wrap;gap:1.5em}figure{margin:0}td,th{padding:0 1em 0 0;text-align:left}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>run {html.escape(run_id)}</title>"
        f"<style>{style}</style></head><body><h1>{html.escape(run_id)}</h1>"
        f"<p>problem {html.escape(problem.name)} · {len(programs)} programs</p>"
        f"<h2>Score</h2>{score_chart(programs, problem)}"
        f"<h2>Archive</h2>{archive_maps(programs, problem, islands)}"
        f"<h2>Cost</h2>{spend_chart(programs, problem, spend)}{model_table(models)}"
        f"<h2>Outcomes</h2><table>{rows}</table></body></html>"
    )
