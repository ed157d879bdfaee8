"""A pool of persistent trusted scorer workers, driven from the event loop.

The scorer never runs in a candidate's process: each worker (``scorer_host.py``) imports the
problem's scorer once and scores decoded JSON outputs, so a slow scorer never blocks the event
loop and a hung one is killed at its own timeout and replaced on next use. Metrics are checked
here: every value must be a finite number and the primary metric must be present.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluators.workers import Worker, WorkerPool
from evolve.records import Status

HOST = Path(__file__).resolve().parent / "scorer_host.py"
_LINE_LIMIT = 256 * 2**20


@dataclass(frozen=True)
class ScoreOutcome:
    """The scorer's verdict: ``EVALUATED`` with metrics, or ``REJECTED``/``BAD_OUTPUT``."""

    status: Status
    metrics: dict[str, float] = field(default_factory=dict)
    feedback: str = ""
    message: str = ""


def verdict(reply: dict[str, Any], primary: str) -> ScoreOutcome:
    """A scorer worker's reply as a verdict: checked metrics, the candidate's rejection, the
    scorer's own crash (``scorer_error``, with its traceback), or output it could not read."""
    kind = reply.get("kind")
    message = str(reply.get("message", ""))
    if kind == "rejected":
        return ScoreOutcome(Status.REJECTED, message=message)
    if kind == "crash":
        return ScoreOutcome(Status.SCORER_ERROR, message=message)
    if kind != "ok":
        return ScoreOutcome(Status.BAD_OUTPUT, message=message)
    checked = check_metrics(reply.get("metrics"), primary)
    if isinstance(checked, str):
        return ScoreOutcome(Status.BAD_OUTPUT, message=checked)
    return ScoreOutcome(Status.EVALUATED, metrics=checked, feedback=str(reply.get("feedback")))


def check_metrics(raw: Any, primary: str) -> dict[str, float] | str:
    """Finite float metrics including ``primary``, or the reason they are not."""
    if not isinstance(raw, dict):
        return "the scorer returned no metrics mapping"
    metrics: dict[str, float] = {}
    for name, value in raw.items():
        if isinstance(value, str):
            kind = "not finite" if value in {"nan", "inf", "-inf"} else "not a number"
            return f"metric {name!r} is {kind} ({value})"
        if not isinstance(value, int | float) or isinstance(value, bool):
            return f"metric {name!r} is not a number ({value!r})"
        if not math.isfinite(value):
            return f"metric {name!r} is not finite ({value})"
        metrics[str(name)] = float(value)
    if primary not in metrics:
        return f"the primary metric {primary!r} is missing"
    return metrics


class _Worker(Worker):
    """A scorer worker, asked one JSON line at a time over its stdin and stdout."""

    async def request(self, payload: bytes) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(payload)
        await self.proc.stdin.drain()
        line = await self.proc.stdout.readline()
        if not line:
            raise ConnectionError("the scorer worker died")
        reply: dict[str, Any] = json.loads(line)
        return reply


class ScorerPool(WorkerPool[_Worker]):
    """Score outputs with up to ``size`` persistent workers (see :class:`WorkerPool` for the
    arguments); ``timeout_s`` bounds one scoring, after which the worker is killed."""

    async def _launch(self) -> _Worker:
        proc = await asyncio.create_subprocess_exec(
            *self._host_argv(HOST),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=self._path.parent,
            env=self._env,
            start_new_session=True,
            limit=_LINE_LIMIT,
        )
        return _Worker(proc)

    async def _hello(self, worker: _Worker) -> dict[str, Any]:
        assert worker.proc.stdout is not None
        line = await worker.proc.stdout.readline()
        hello: dict[str, Any] = json.loads(line) if line else {"message": "worker died"}
        return hello

    async def score(
        self, output: Any, stage: str | None = None, entry_kwargs: dict[str, Any] | None = None
    ) -> ScoreOutcome:
        """Score one decoded output; raises only :class:`ScorerLoadError`."""
        payload = (
            json.dumps(
                {"output": output, "stage": stage, "entry_kwargs": entry_kwargs or {}}
            ).encode()
            + b"\n"
        )
        async with self._slots:
            worker = self._idle.pop() if self._idle else await self._spawn()
            try:
                async with asyncio.timeout(self._timeout_s):
                    reply = await worker.request(payload)
            except TimeoutError:
                self._discard(worker)
                return ScoreOutcome(
                    Status.BAD_OUTPUT, message=f"the scorer took longer than {self._timeout_s:g} s"
                )
            except (ConnectionError, ValueError) as exc:
                self._discard(worker)
                return ScoreOutcome(Status.BAD_OUTPUT, message=f"the scorer failed: {exc}")
            except BaseException:
                self._discard(worker)
                raise
            self._idle.append(worker)
        return verdict(reply, self._primary)
