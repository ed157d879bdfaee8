"""What the scorer pool and the episode pool share: persistent trusted worker processes that
load one of the problem's functions, say hello, and are started lazily, killed and reaped.

A subclass says how one worker is started and how its first message is read (a pipe for the
scorer, a seqpacket socket for an interactive environment); this base keeps the bookkeeping:
up to ``size`` concurrent users, idle workers for reuse, every live worker killed on close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Generic, TypeVar

from evolve.errors import UserError


class ScorerLoadError(UserError):
    """The problem's scorer cannot be imported: a problem bug, not a candidate failure."""


class Worker:
    """One worker process (its own process group, killed whole)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


W = TypeVar("W", bound=Worker)


class WorkerPool(ABC, Generic[W]):
    """Workers that load ``function`` from ``path``, at most ``size`` in use at once.

    Args:
        path: the problem's file holding the function (its scorer or environment).
        function: the function's name.
        primary: the primary metric, which every result must contain.
        size: the number of workers (and of concurrent uses).
        timeout_s: how long a worker may take to load, and to answer one use.
        env: the workers' environment (default: inherited). The evaluator passes a scrubbed
            one, so that no API key sits in a ``/proc/<pid>/environ`` a candidate might read.
    """

    #: What the workers load, for the error when they cannot ("scorer", "environment").
    loads = "scorer"

    def __init__(
        self,
        path: Path,
        function: str,
        primary: str,
        size: int,
        timeout_s: float,
        env: dict[str, str] | None = None,
    ) -> None:
        self._path = path
        self._function = function
        self._primary = primary
        self._timeout_s = timeout_s
        self._env = env
        self._idle: list[W] = []
        self._all: set[W] = set()
        self._slots = asyncio.Semaphore(size)

    def _host_argv(self, host: Path) -> list[str]:
        """The command line of a worker running ``host`` with the controller's import path."""
        paths = json.dumps([p for p in sys.path if p])
        return [sys.executable, str(host), str(self._path), self._function, paths]

    @abstractmethod
    async def _launch(self) -> W:
        """Start one worker process (not yet loaded)."""

    @abstractmethod
    async def _hello(self, worker: W) -> dict[str, Any]:
        """The worker's first message; ``{"kind": "ready"}`` once its function is loaded."""

    async def _spawn(self) -> W:
        """A new loaded worker; raises :class:`ScorerLoadError` when the function won't load."""
        worker = await self._launch()
        self._all.add(worker)
        try:
            async with asyncio.timeout(self._timeout_s):
                hello = await self._hello(worker)
        except BaseException:
            self._discard(worker)
            raise
        if hello.get("kind") != "ready":
            self._discard(worker)
            raise ScorerLoadError(
                f"{self._path}: cannot load the {self.loads}: {hello.get('message')}"
            )
        return worker

    def _discard(self, worker: W) -> None:
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
