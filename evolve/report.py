"""Read-only views of runs as plain text (for pipes and files), JSON and HTML.

Plain text is whole: no boxes, nothing cut to a width, one record per line where it can be; a
lineage is a sequence of unified diffs that ``patch``/``git apply`` accept. The terminal's rich
views of the same records are in :mod:`evolve.display`.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evolve.errors import UserError
from evolve.problem import BestKnown, load_problem, problems_dirs
from evolve.records import Program

if TYPE_CHECKING:  # not imported to list problems: that needs no database
    from rich.console import RenderableType

    from evolve.runread import ProgramDetail, Reader, RunListing, RunStatus

#: The file name lineage diffs use, so that the whole sequence applies to one file.
LINEAGE_FILE = "program.py"


def fmt_score(value: float | None) -> str:
    return "-" if value is None else f"{value:.10g}"


def plain_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Columns padded to their widest cell, two spaces apart; nothing is cut."""
    cells = [[str(h) for h in headers], *[["-" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)


def failure_line(message: str) -> str:
    """The line of an error message that says most: a traceback's last line, else the first."""
    lines = [ln.strip() for ln in message.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]


def to_json(value: Any) -> str:
    """``value`` (records, dataclasses, datetimes) as indented JSON."""
    return json.dumps(_plain(value), indent=2, allow_nan=False, default=str) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, Program):
        return value.model_dump(mode="json")
    if hasattr(value, "__dataclass_fields__"):
        return {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and (value != value or abs(value) == float("inf")):
        return None
    return value


# -- runs ------------------------------------------------------------------------------------
def runs_text(runs: Sequence[RunListing]) -> str:
    if not runs:
        return "no runs\n"
    rows = [(r.run, r.problem, r.status, r.iterations, fmt_score(r.best), f"{r.updated:%Y-%m-%d %H:%M}", r.database)
            for r in runs]
    return plain_table(("run", "problem", "status", "iterations", "best", "updated", "database"), rows) + "\n"


def list_run_folders(runs_dir: Path) -> list[tuple[str, str]]:
    """(database URL, folder) of each run folder under ``runs_dir``."""
    from evolve.locate import DB_FILE, sqlite_url

    return [(sqlite_url(f), str(f.parent)) for f in sorted(runs_dir.glob(f"*/{DB_FILE}"))]


# -- status ----------------------------------------------------------------------------------
def status_text(s: RunStatus) -> str:
    gain = f" ({s.best_score - s.initial_score:+.6g})" if s.best_score is not None and s.initial_score is not None else ""
    lines = [
        f"run: {s.run_id}  [{s.state}]{'  ' + s.stop_reason if s.stop_reason else ''}",
        f"problem: {s.problem}  ({s.problem_root})",
        f"iterations: {s.iterations} of {s.max_iterations}  seed {s.seed}",
        f"best {s.primary}: {fmt_score(s.best_score)}{gain}  program {s.best_id or '-'}",
        f"initial: {fmt_score(s.initial_score)}",
        f"search: {s.strategy}",
    ]
    for pid, values in s.front or []:
        lines.append(f"front: {pid}  " + "  ".join(f"{k}={v:.6g}" for k, v in values.items()))
    if s.best_known is not None:
        lines.append(f"best known: {s.best_known:.10g}  ({s.best_known_source})")
    lines.append(f"started: {s.created:%Y-%m-%d %H:%M:%S}  updated: {s.updated:%Y-%m-%d %H:%M:%S}")
    total = max(1, sum(s.outcomes.values()))
    sections = [
        ("outcomes", plain_table(("status", "programs", "share"),
                                 [(k, n, f"{n / total:.0%}") for k, n in s.outcomes.items()])),
        ("archive (cells ever occupied)", plain_table(("island", "cells", "best"),
                                                      [(i.island, f"{i.cells} / {i.of_cells}", fmt_score(i.best))
                                                       for i in s.islands])),
    ]
    if s.models:
        sections.append(("model calls", plain_table(
            ("model", "calls", "errors", "retried", "tokens in", "tokens out", "cost $", "latency s"),
            [(m.model, m.calls, m.errors, m.retried, m.input_tokens, m.output_tokens, f"{m.cost_usd:.4g}",
              f"{m.mean_latency_s:.2f}") for m in s.models])))
        sections.append(("children by model", plain_table(
            ("model", "children", "failed", "improved", "improved share"),
            [(m.model, m.children, m.failed, m.improved, f"{m.improved / m.children:.0%}" if m.children else "-")
             for m in s.models])))
    if s.llm_failures:
        sections.append(("model call failures", plain_table(
            ("model", "kind", "retried", "failed calls"),
            [(f["model"], f["kind"], f["retried"], f["failed"]) for f in s.llm_failures])))
    if s.recent_failures:
        sections.append(("recent failures (newest first; evolve show RUN ITERATION for the whole text)", "\n".join(
            f"iteration {f.iteration}  {f.program_id}  {f.status}{f' ({f.stage})' if f.stage else ''}: "
            f"{failure_line(f.message)}" for f in s.recent_failures)))
    if s.history:
        sections.append(("history", "\n".join(_history_line(h) for h in s.history)))
    body = "\n".join(lines)
    for title, text in sections:
        body += f"\n\n{title}\n{text}"
    return body + "\n"


def _history_line(h: dict[str, Any]) -> str:
    overrides = " ".join(h.get("overrides") or [])
    changed = "; ".join(f"{k}: {v[0]} -> {v[1]}" for k, v in (h.get("changed") or {}).items())
    return f"{h['at']}  {h['kind']}" + (f"  {overrides}" if overrides else "") + (f"  ({changed})" if changed else "")


# -- lineage ---------------------------------------------------------------------------------
def step_title(p: Program, prev: Program | None, primary: str) -> str:
    score = p.score(primary)
    prev_score = prev.score(primary) if prev else None
    delta = f" ({score - prev_score:+.6g})" if score is not None and prev_score is not None else ""
    outcome = fmt_score(score) if score is not None else p.status.value
    return f"iteration {p.iteration} · {p.id} · island {p.island} · {p.mode} · {primary} {outcome}{delta}"


def creation_diff(code: str, name: str = LINEAGE_FILE) -> str:
    """``code`` as a unified diff that creates the file ``name``."""
    lines = code.splitlines(keepends=True)
    body = "".join("+" + (ln if ln.endswith("\n") else ln + "\n") for ln in lines)
    return f"--- /dev/null\n+++ b/{name}\n@@ -0,0 +1,{len(lines)} @@\n{body}" if lines else ""


def renamed_diff(diff: str, name: str = LINEAGE_FILE) -> str:
    """A stored diff (headers ``a/parent``, ``b/child``) with both headers naming ``name``."""
    lines = diff.splitlines(keepends=True)
    if len(lines) >= 2 and lines[0].startswith("--- ") and lines[1].startswith("+++ "):
        lines[:2] = [f"--- a/{name}\n", f"+++ b/{name}\n"]
    return "".join(lines)


def lineage_text(chain: Sequence[Program], primary: str, *, diffs: bool) -> str:
    """Each step as a ``#`` title line and its diff: the whole text, applied in order to an empty
    folder (``patch -p1`` or ``git apply``), writes the initial program to ``program.py`` and takes
    it through every step to the selected one."""
    out = [f"# lineage: {len(chain)} programs, initial -> selected\n"]
    prev: Program | None = None
    for p in chain:
        out.append(f"# {step_title(p, prev, primary)}\n")
        if diffs:
            text = creation_diff(p.code or "") if prev is None else renamed_diff(p.diff)
            out.append(text if text.endswith("\n") or not text else text + "\n")
        prev = p
    return "".join(out)


def lineage_json(run_id: str, chain: Sequence[Program], primary: str) -> dict[str, Any]:
    steps = []
    prev: Program | None = None
    for p in chain:
        score, before = p.score(primary), prev.score(primary) if prev else None
        steps.append({**p.model_dump(mode="json"), "score": score,
                      "delta": score - before if score is not None and before is not None else None})
        prev = p
    return {"run_id": run_id, "primary": primary, "programs": steps}


# -- one program -----------------------------------------------------------------------------
def program_text(d: ProgramDetail) -> str:
    p = d.program
    score = p.score(d.primary)
    head = [
        f"program: {p.id}",
        f"iteration: {p.iteration}  island {p.island}  generation {p.generation}  mode {p.mode}",
        f"status: {p.status.value}",
        f"{d.primary}: {fmt_score(score)}",
        f"parent: {p.parent_id or '-'}"
        + (f"  ({d.primary} {fmt_score(d.parent.score(d.primary))})" if d.parent is not None else ""),
        "children: " + (", ".join(f"{c.id} (iteration {c.iteration}, {c.status.value})" for c in d.children) or "-"),
    ]
    if p.metrics:
        head.append("metrics: " + ", ".join(f"{k}={v:.10g}" if isinstance(v, float) else f"{k}={v}"
                                            for k, v in p.metrics.items()))
    if p.timings:
        head.append("timings: " + ", ".join(f"{k}={v:.3g}" for k, v in p.timings.items()))
    if d.front is not None:
        head.append(f"pareto front: {'on' if d.on_front else 'not on'} the run's front of {len(d.front)} programs"
                    + ("" if d.picked else " (evolve show RUN without PROGRAM lists them)"))
    parts = ([front_text(d)] if d.picked else []) + ["\n".join(head)]
    if p.error is not None:
        parts.append(f"== error: {p.error.kind.value}{f' ({p.error.stage})' if p.error.stage else ''}\n"
                     f"{p.error.message.rstrip()}")
    if p.feedback:
        parts.append(f"== feedback\n{p.feedback.rstrip()}")
    if p.diff:
        parts.append(f"== diff against the parent\n{renamed_diff(p.diff).rstrip()}")
    if d.call is not None:
        c = d.call
        parts.append(f"== model call: {c['model']}  {c['input_tokens']} tokens in, {c['output_tokens']} out, "
                     f"${c['cost_usd']:.4g}, {c['latency_s']:.2f} s"
                     + (f"  error {c['error_kind']}: {c['error_message']}" if c["error_kind"] else ""))
        for m in c["prompt"]:
            parts.append(f"== prompt ({m.get('role', '?')})\n{str(m.get('content', '')).rstrip()}")
        if c["reply"] is not None:
            parts.append(f"== reply\n{c['reply'].rstrip()}")
    parts.append("== code\n" + (p.code.rstrip() if p.code is not None else "(no program: the proposal failed)"))
    return "\n\n".join(parts) + "\n"


def front_text(d: ProgramDetail) -> str:
    """What a ``show`` without PROGRAM shows: which program, and for a pareto run that the best is
    a front, its members and how to see another."""
    if d.front is None:
        return f"the run's best by {d.primary}: program {d.program.id}"
    lines = [f"the best of a pareto run is its front: {len(d.front)} programs no other program dominates; "
             f"shown: the front's best by {d.primary}, program {d.program.id} (another: evolve show RUN PROGRAM)"]
    for pid, values in d.front:
        lines.append(f"front: {pid}  " + "  ".join(f"{k}={v:.6g}" for k, v in values.items())
                     + ("  (shown)" if pid == d.program.id else ""))
    return "\n".join(lines)


def program_json(run_id: str, d: ProgramDetail) -> dict[str, Any]:
    return {
        "run_id": run_id, "primary": d.primary, "score": d.program.score(d.primary), "picked": d.picked,
        "on_front": d.on_front,
        "front": None if d.front is None else [{"id": pid, "objectives": values} for pid, values in d.front],
        "program": d.program.model_dump(mode="json"),
        "parent": d.parent.model_dump(mode="json") if d.parent else None,
        "call": d.call, "children": [{"id": c.id, "iteration": c.iteration, "status": c.status.value}
                                     for c in d.children],
    }


# -- problems --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProblemListing:
    name: str
    direction: str | None
    primary: str | None
    best_known: float | None
    source: str | None
    folder: str
    error: str | None = None
    scoring: str = "-"  # the scorer's tolerance and any caveat the best-known value needs


def problem_listings() -> list[ProblemListing]:
    out = []
    seen: set[str] = set()
    for d in problems_dirs():
        for folder in sorted(p for p in d.iterdir() if (p / "problem.yaml").is_file()):
            if folder.name in seen:
                continue
            seen.add(folder.name)
            try:
                prob = load_problem(folder)
            except UserError as exc:
                out.append(ProblemListing(folder.name, None, None, None, None, str(folder), str(exc)))
                continue
            bk = prob.spec.best_known
            out.append(ProblemListing(prob.name, prob.spec.metrics.direction, prob.spec.metrics.primary,
                                      bk.value if bk else None, bk.source if bk else None, str(folder),
                                      scoring=scoring_label(prob.spec.tolerance, bk)))
    return out


def scoring_label(tolerance: str | None, best: BestKnown | None) -> str:
    """The tolerance the scorer allows, then any caveat the best-known value needs."""
    parts = [f"tolerance: {tolerance}" if tolerance else "", best.note if best and best.note else ""]
    return "; ".join(p for p in parts if p) or "-"


def problems_text(problems: Sequence[ProblemListing]) -> str:
    rows = [(p.name, p.direction or "invalid", p.primary or "-", "-" if p.best_known is None else f"{p.best_known:.10g}",
             p.error or p.source or "-", p.scoring, p.folder) for p in problems]
    return plain_table(("name", "direction", "metric", "best known", "source", "scoring", "folder"), rows) + "\n"


# -- HTML ------------------------------------------------------------------------------------
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
        title = html.escape(step_title(p, prev, primary))
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


def run_html(db: Reader, run_id: str) -> str:
    """The run's page: score over iterations, the archive maps, what the model calls cost (see
    :mod:`evolve.runpage`)."""
    from evolve.runpage import run_page
    from evolve.runread import model_summaries, run_row, stored_problem

    row = run_row(db, run_id)
    islands = int(row.config.get("search", {}).get("islands", 1))
    programs, problem = db.programs(run_id), stored_problem(db, run_id)
    return run_page(
        run_id, programs, problem, islands,
        spend=db.llm_spend(run_id), models=model_summaries(db, run_id, programs, problem),
    )


def run_status(db: Reader, run_id: str) -> RenderableType:
    """The terminal's (rich) view of a run's status (see :func:`evolve.display.status_view`)."""
    from evolve.display import status_view
    from evolve.runread import run_status as read_status

    return status_view(read_status(db, run_id))
