"""A run's programs as JSON lines or CSV, one row per program (see
:func:`evolve.runread.export_rows`)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

__all__ = ["to_csv", "to_jsonl"]


def to_jsonl(rows: Sequence[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, allow_nan=False, default=_no_nan) + "\n" for r in _finite(rows))


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """Flat columns: ``lineage`` as ids joined by ``>``, each metric as ``metric.NAME`` and each
    feature as ``feature.NAME``; the rest as they are."""
    metrics = sorted({k for r in rows for k in r["metrics"]})
    features = sorted({k for r in rows for k in r["features"]})
    base = [k for k in (rows[0] if rows else {}) if k not in ("metrics", "features")]
    header = [*base, *(f"metric.{m}" for m in metrics), *(f"feature.{f}" for f in features)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for r in rows:
        flat = [">".join(r[k]) if k == "lineage" else _cell(r[k]) for k in base]
        flat += [_cell(r["metrics"].get(m)) for m in metrics]
        flat += [_cell(r["features"].get(f)) for f in features]
        writer.writerow(flat)
    return buf.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return value


def _finite(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """NaN and infinities (a metric may be one) as null, so that every line is strict JSON."""

    def fix(v: Any) -> Any:
        if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
            return None
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v

    return [fix(r) for r in rows]


def _no_nan(value: Any) -> Any:
    return str(value)
