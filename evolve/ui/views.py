"""What each page of the web UI shows, computed from the run database as plain JSON values.

Pure functions over the rows :class:`evolve.database.Database` returns: the HTTP layer
(:mod:`evolve.ui.app`) only routes, and these decide nothing about how a run goes.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from evolve.database import Database
from evolve.database.models import RunRow
from evolve.records import FAILURES, Status
from evolve.runread import run_state
from evolve.ui.catalog import RunMeta

FAILURE_KINDS = tuple(sorted(s.value for s in FAILURES))
_FAILED = frozenset(FAILURE_KINDS)
Outline = dict[str, Any]


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def _seconds(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def score_of(o: Outline) -> float | None:
    """A program's primary score, None unless it was evaluated."""
    return float(o["score"]) if o["status"] == Status.EVALUATED.value and o["score"] is not None else None


def best_index(outlines: Sequence[Outline], meta: RunMeta) -> int | None:
    """The position of the best program (the earliest of equals), None before any score."""
    best: int | None = None
    for k, o in enumerate(outlines):
        s = score_of(o)
        if s is not None and (best is None or meta.fitness(s) > meta.fitness(score_of(outlines[best]) or 0.0)):
            best = k
    return best


def overview(db: Database, row: RunRow, meta: RunMeta) -> dict[str, Any]:
    """One run as the runs table and the run page's head show it."""
    counts = db.status_counts(row.id)
    lease = db.lease_holder(row.id)
    state = run_state(row, lease)
    best = db.best_program(row.id, maximize=meta.maximize)
    usage = db.llm_usage(row.id)
    best_score = best.metrics.get(meta.primary) if best else None
    gap = None
    if best_score is not None and meta.best_known is not None:
        gap = meta.fitness(best_score) - meta.fitness(meta.best_known)
    return {
        "id": row.id,
        "problem": row.problem,
        "status": row.status,
        "state": state,
        "alive": state.startswith("running"),
        "owner": f"pid {lease['pid']} on {lease['host']}" if lease else None,
        "stop_reason": row.stop_reason,
        "iterations": max(0, sum(counts.values()) - 1),
        "max_iterations": row.config.get("max_iterations"),
        "counts": counts,
        "primary": meta.primary,
        "direction": "maximize" if meta.maximize else "minimize",
        "best_score": best_score,
        "best_id": best.id if best else None,
        "best_known": meta.best_known,
        "best_known_source": meta.best_known_source,
        "gap_to_best_known": gap,
        "cost_usd": math.fsum(float(u["cost_usd"] or 0.0) for u in usage),
        "tokens": sum(int(u["input_tokens"] or 0) + int(u["output_tokens"] or 0) for u in usage),
        "seed": row.seed,
        "islands": int(row.config.get("search", {}).get("islands", 1)),
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "problem_error": meta.problem_error,
    }


def _best_steps(scores: Sequence[float], meta: RunMeta) -> list[float | None]:
    """The best score so far where it changes, None where it does not (the last point keeps
    its value, so a stepped line reaches the end): a tenth of the bytes at 10,000 points."""
    out: list[float | None] = []
    best: float | None = None
    for s in scores:
        if best is None or meta.fitness(s) > meta.fitness(best):
            best = s
            out.append(s)
        else:
            out.append(None)
    if out and out[-1] is None:
        out[-1] = best
    return out


def _changes(xs: Sequence[float], best: Sequence[float | None]) -> dict[str, list[Any]]:
    """Only the points where the best changed (and the last one)."""
    keep = [k for k, b in enumerate(best) if b is not None]
    return {"x": [xs[k] for k in keep], "best": [best[k] for k in keep]}


def _clip_range(scores: Sequence[float], meta: RunMeta) -> list[float] | None:
    """A y range that leaves out the worst 5% (near-zero failures of an idea flatten the rest)."""
    if not scores:
        return None
    fits = sorted(meta.fitness(s) for s in scores)
    floor = fits[len(fits) // 20]
    kept = [s for s in scores if meta.fitness(s) >= floor]
    return [min(kept), max(kept)]


def charts(outlines: Sequence[Outline], spend: Sequence[tuple[int, float, int]], meta: RunMeta) -> dict[str, Any]:
    """Best score over iterations, over time and over dollars (tokens when the models have no
    price); failures by kind over iterations. Arrays are aligned per chart (uPlot's form)."""
    scored = [(o["iteration"], s, o) for o in outlines if (s := score_of(o)) is not None]
    iters = [i for i, _, _ in scored]
    scores = [s for _, s, _ in scored]
    start = _seconds(outlines[0]["created_at"]) if outlines else 0.0
    by_time = sorted(
        ((_seconds(o["evaluated_at"] or o["created_at"]) - start, s) for _, s, o in scored),
        key=lambda t: t[0],
    )
    cost = math.fsum(c for _, c, _ in spend)
    per_iteration: dict[int, float] = defaultdict(float)
    for iteration, c, t in spend:
        per_iteration[iteration] += c if cost > 0 else float(t)
    last = outlines[-1]["iteration"] if outlines else 0
    spent, total = [], 0.0
    for i in range(last + 1):
        total += per_iteration.get(i, 0.0)
        spent.append(total)
    spend_x = [spent[i] if i < len(spent) else total for i in iters]
    return {
        "primary": meta.primary,
        "y_range": _clip_range(scores, meta),
        "iteration": {"x": iters, "score": scores, "best": _best_steps(scores, meta)},
        "time": _changes([t for t, _ in by_time], _best_steps([s for _, s in by_time], meta)),
        "spend": {
            "unit": "usd" if cost > 0 else "tokens",
            **_changes(spend_x, _best_steps(scores, meta)),
            "total": total,
        },
        "failures": failures_over_iterations(outlines),
    }


def failures_over_iterations(outlines: Sequence[Outline], buckets: int = 30) -> dict[str, Any]:
    """Failed programs by kind in up to ``buckets`` equal spans of iterations."""
    last = outlines[-1]["iteration"] if outlines else 0
    width = max(1, math.ceil((last + 1) / buckets))
    n = last // width + 1
    series: dict[str, list[int]] = {}
    for o in outlines:
        if o["status"] in _FAILED:
            series.setdefault(o["status"], [0] * n)[o["iteration"] // width] += 1
    return {"x": [k * width for k in range(n)], "width": width, "series": series}


def archive(outlines: Sequence[Outline], meta: RunMeta, islands: int) -> dict[str, Any]:
    """Per island, the elite of each cell of the first two feature dimensions: its score and id
    (the initial program counts on every island)."""
    xs = meta.features[0][1] if meta.features else 1
    ys = meta.features[1][1] if len(meta.features) > 1 else 1
    maps = []
    for island in range(islands):
        cells: dict[tuple[int, int], tuple[float, Outline]] = {}
        for o in outlines:
            s = score_of(o)
            if s is None or not (o["island"] == island or o["iteration"] == 0):
                continue
            cell = o["cell"] or [0]
            key = (int(cell[0]), int(cell[1]) if len(cell) > 1 else 0)
            held = cells.get(key)
            if held is None or meta.fitness(s) > meta.fitness(held[0]):
                cells[key] = (s, o)
        maps.append({
            "island": island,
            "cells": [
                {"x": x, "y": y, "score": s, "id": o["id"], "iteration": o["iteration"]}
                for (x, y), (s, o) in sorted(cells.items())
            ],
        })
    names = [name for name, _ in meta.features[:2]]
    return {"x_bins": xs, "y_bins": ys, "dimensions": names, "maximize": meta.maximize, "islands": maps}


def models(db: Database, run_id: str, outlines: Sequence[Outline], meta: RunMeta) -> list[dict[str, Any]]:
    """Per model: calls, errors, tokens, cost, latency, and its children (failed, improved on
    their parent)."""
    by_id = {o["id"]: o for o in outlines}
    made: dict[str, list[Outline]] = defaultdict(list)
    for o in outlines:
        if o["model"] is not None:
            made[o["model"]].append(o)
    out = []
    for u in db.llm_usage(run_id):
        children = made.get(str(u["model"]), [])
        improved = 0
        for c in children:
            cs = score_of(c)
            parent = by_id.get(c["parent_id"] or "")
            ps = score_of(parent) if parent else None
            improved += cs is not None and ps is not None and meta.fitness(cs) > meta.fitness(ps)
        cost = float(u["cost_usd"] or 0.0)
        out.append({
            "model": u["model"], "calls": int(u["calls"]), "errors": int(u["errors"]),
            "retried": int(u["retried"]), "input_tokens": int(u["input_tokens"] or 0),
            "output_tokens": int(u["output_tokens"] or 0), "cost_usd": cost,
            "mean_latency_s": float(u["mean_latency_s"] or 0.0), "children": len(children),
            "failed": sum(1 for c in children if c["status"] in _FAILED), "improved": improved,
            "usd_per_improvement": cost / improved if improved and cost > 0 else None,
        })
    return out


def lineage_graph(outlines: Sequence[Outline], meta: RunMeta) -> dict[str, Any]:
    """The population as a tree, laid out on the server: y is the depth from the root, x the
    order of the leaves under a depth-first walk (a parent sits over the middle of its
    children). Columnar arrays, so 10,000 programs stay a small reply. ``path`` is the chain of
    positions from the root to the best program."""
    n = len(outlines)
    index = {o["id"]: k for k, o in enumerate(outlines)}
    parent = [index.get(o["parent_id"] or "", -1) for o in outlines]
    children: list[list[int]] = [[] for _ in range(n)]
    for k, p in enumerate(parent):
        if p >= 0:
            children[p].append(k)
    x = [0.0] * n
    depth = [0] * n
    leaves = 0
    for root in (k for k in range(n) if parent[k] < 0):
        stack: list[tuple[int, bool]] = [(root, False)]
        while stack:
            k, done = stack.pop()
            if done:
                kids = children[k]
                x[k] = (x[kids[0]] + x[kids[-1]]) / 2 if kids else x[k]
                continue
            if not children[k]:
                x[k] = float(leaves)
                leaves += 1
                continue
            stack.append((k, True))
            for c in reversed(children[k]):
                depth[c] = depth[k] + 1
                stack.append((c, False))
    best = best_index(outlines, meta)
    path: list[int] = []
    k = best if best is not None else -1
    while k >= 0 and len(path) <= n:
        path.append(k)
        k = parent[k]
    return {
        "primary": meta.primary,
        "maximize": meta.maximize,
        "id": [o["id"] for o in outlines],
        "iteration": [o["iteration"] for o in outlines],
        "parent": parent,
        "x": x,
        "y": depth,
        "status": [o["status"] for o in outlines],
        "score": [score_of(o) for o in outlines],
        "island": [o["island"] for o in outlines],
        "best": best,
        "path": path[::-1],
    }


def filter_programs(
    outlines: Sequence[Outline],
    meta: RunMeta,
    *,
    status: str | None = None,
    island: int | None = None,
    model: str | None = None,
    min_score: float | None = None,
    max_score: float | None = None,
    sort: str = "iteration",
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """Programs that pass every given filter, best first (``sort=score``) or by iteration."""
    def keep(o: Outline) -> bool:
        s = score_of(o)
        return (
            (status is None or o["status"] == status)
            and (island is None or o["island"] == island)
            and (model is None or o["model"] == model)
            and (min_score is None or (s is not None and s >= min_score))
            and (max_score is None or (s is not None and s <= max_score))
        )

    found = [o for o in outlines if keep(o)]
    if sort == "score":
        found.sort(key=lambda o: (score_of(o) is None, -meta.fitness(score_of(o) or 0.0), o["iteration"]))
    page = found[offset: offset + limit]
    return {
        "total": len(found),
        "offset": offset,
        "limit": limit,
        "statuses": dict(Counter(o["status"] for o in outlines)),
        "models": sorted({o["model"] for o in outlines if o["model"]}),
        "programs": [
            {
                "id": o["id"], "iteration": o["iteration"], "parent_id": o["parent_id"],
                "island": o["island"], "generation": o["generation"], "status": o["status"],
                "score": score_of(o), "model": o["model"], "error_kind": o["error_kind"],
                "cell": o["cell"], "created_at": _iso(o["created_at"]),
            }
            for o in page
        ],
    }


def program_detail(db: Database, run_id: str, program_id: str, meta: RunMeta) -> dict[str, Any] | None:
    """One program: code, diff against its parent, metrics, feedback, error, output, the prompt
    and reply of the model call that made it, its children and its lineage (ids)."""
    program = db.program(program_id)
    if program is None or program.run_id != run_id:
        return None
    parent = db.program(program.parent_id) if program.parent_id else None
    return {
        "id": program.id,
        "run_id": program.run_id,
        "iteration": program.iteration,
        "parent_id": program.parent_id,
        "parent_score": parent.score(meta.primary) if parent else None,
        "island": program.island,
        "generation": program.generation,
        "mode": program.mode,
        "status": program.status.value,
        "score": program.score(meta.primary),
        "primary": meta.primary,
        "metrics": program.metrics,
        "features": program.features,
        "cell": list(program.cell) if program.cell is not None else None,
        "code": program.code,
        "diff": program.diff,
        "feedback": program.feedback,
        "error": program.error.model_dump(mode="json") if program.error else None,
        "stdout_tail": db.program_stdout(program.id),
        "timings": program.timings,
        "inspiration_ids": list(program.inspiration_ids),
        "call": db.program_call(program.id),
        "children": [
            {**c, "score": c["score"] if c["status"] == Status.EVALUATED.value else None}
            for c in db.children_of(program.id)
        ],
        "lineage": [p.id for p in db.lineage(program.id)],
    }
