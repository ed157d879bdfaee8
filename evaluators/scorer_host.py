"""Trusted scorer worker: imports a problem's scorer once and scores outputs on request.

Run as ``python scorer_host.py SCORER_PATH FUNCTION SYS_PATH_JSON``. Requests arrive on stdin and
replies leave on a private copy of stdout, one JSON line each; fd 1 is pointed at stderr so a
scorer that prints cannot corrupt the channel. It never sees candidate code, only the candidate's
decoded JSON output.

Request: ``{"output": ..., "stage": name or null, "entry_kwargs": {...}}``. The scorer is called
as ``fn(output)``, plus ``stage=`` and ``entry_kwargs=`` when its signature names them.
Reply: ``{"kind": "ok", "metrics": {...}, "feedback": str}``, ``{"kind": "rejected", "message"}``
or ``{"kind": "error", "message"}``.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import math
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any


def _load(path: str, function: str) -> Callable[..., Any]:
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location("evolve_problem_scorer", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    fn = getattr(module, function, None)
    if not callable(fn):
        raise AttributeError(f"{path} has no function {function!r}")
    return fn  # type: ignore[no-any-return]


def _plain(value: Any) -> Any:
    """A metric value as JSON can carry it; non-numbers are sent as their repr for the message."""
    if hasattr(value, "item") and callable(value.item):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return repr(value)
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, int | float):
        return float(value)
    return repr(value)


def _score(fn: Callable[..., Any], params: set[str], request: dict[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if "stage" in params:
        kwargs["stage"] = request.get("stage")
    if "entry_kwargs" in params:
        kwargs["entry_kwargs"] = request.get("entry_kwargs", {})
    try:
        result = fn(request["output"], **kwargs)
    except Exception as exc:
        name = type(exc).__name__
        if name == "Rejected" and type(exc).__module__ == "evolve.scoring":
            return {"kind": "rejected", "message": str(exc)}
        return {"kind": "crash", "message": f"the scorer raised {name}: {exc}\n{traceback.format_exc()}"}
    feedback = ""
    if isinstance(result, tuple) and len(result) == 2:
        result, feedback = result
    if not isinstance(result, dict):
        return {
            "kind": "error",
            "message": f"the scorer returned {type(result).__name__}, not a dict",
        }
    metrics = {str(k): _plain(v) for k, v in result.items()}
    return {"kind": "ok", "metrics": metrics, "feedback": str(feedback or "")}


def _encode(reply: dict[str, Any]) -> bytes:
    def fix(v: Any) -> Any:
        return repr(v) if isinstance(v, float) and not math.isfinite(v) else v

    if reply.get("kind") == "ok":
        reply = {**reply, "metrics": {k: fix(v) for k, v in reply["metrics"].items()}}
    return json.dumps(reply).encode() + b"\n"


def main(path: str, function: str, sys_path: list[str]) -> None:
    for entry in reversed(sys_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    channel = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    try:
        fn = _load(path, function)
        params = set(inspect.signature(fn).parameters)
    except Exception as exc:
        channel.write(_encode({"kind": "fatal", "message": f"{type(exc).__name__}: {exc}"}))
        return
    channel.write(_encode({"kind": "ready"}))
    for line in sys.stdin.buffer:
        request = json.loads(line)
        channel.write(_encode(_score(fn, params, request)))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))
