"""A pool of persistent trusted scorer workers, driven from the event loop.

The scorer never runs in a candidate's process: each worker (``scorer_host.py``) imports the
problem's scorer once and scores decoded JSON outputs, so a slow scorer never blocks the event
loop and a hung one is killed at its own timeout and replaced on next use. Metrics are checked
here: every value must be a finite number and the primary metric must be present.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evolve.errors import UserError
from evolve.records import Status

HOST = Path(__file__).resolve().parent / "scorer_host.py"
_LINE_LIMIT = 256 * 2**20


class ScorerLoadError(UserError):
    """The problem's scorer cannot be imported: a problem bug, not a candidate failure."""


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


class _Worker:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def request(self, payload: bytes) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(payload)
        await self.proc.stdin.drain()
        line = await self.proc.stdout.readline()
        if not line:
            raise ConnectionError("the scorer worker died")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None


class ScorerPool:
    """Score outputs with up to ``size`` persistent workers; started lazily.

    Args:
        scorer_path: the problem's scorer file.
        function: the scorer function's name.
        primary: the primary metric, which every result must contain.
        size: the number of workers (and of concurrent scorings).
        timeout_s: how long one scoring may take before the worker is killed.
        env: the workers' environment (default: inherited). The evaluator passes a scrubbed
            one, so that no API key sits in a ``/proc/<pid>/environ`` a candidate might read.
    """

    def __init__(
        self,
        scorer_path: Path,
        function: str,
        primary: str,
        size: int,
        timeout_s: float,
        env: dict[str, str] | None = None,
    ) -> None:
        self._path = scorer_path
        self._env = env
        self._function = function
        self._primary = primary
        self._timeout_s = timeout_s
        self._idle: list[_Worker] = []
        self._slots = asyncio.Semaphore(size)
        self._all: set[_Worker] = set()

    async def _spawn(self) -> _Worker:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HOST),
            str(self._path),
            self._function,
            json.dumps([p for p in sys.path if p]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=self._path.parent,
            env=self._env,
            start_new_session=True,
            limit=_LINE_LIMIT,
        )
        worker = _Worker(proc)
        self._all.add(worker)
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), self._timeout_s)
            hello = json.loads(line) if line else {"kind": "fatal", "message": "worker died"}
        except BaseException:
            worker.kill()
            self._all.discard(worker)
            raise
        if hello.get("kind") != "ready":
            worker.kill()
            self._all.discard(worker)
            raise ScorerLoadError(f"{self._path}: cannot load the scorer: {hello.get('message')}")
        return worker

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

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        self._all.discard(worker)

    async def aclose(self) -> None:
        """Kill every worker and reap them."""
        workers, self._all, self._idle = list(self._all), set(), []
        for worker in workers:
            worker.kill()
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                await worker.proc.wait()
