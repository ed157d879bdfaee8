"""The run's clocks: the heartbeat that keeps its lease, and the wall-time limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from evolve.database.lease import LeaseLost, RunLease
from evolve.outcomes import RunHalted
from evolve.recorder import Recorder


async def heartbeat(
    recorder: Recorder, lease: RunLease | None, every_s: float, on_lost: Callable[[RunHalted], None]
) -> None:
    """Mark the run alive and renew its lease every ``every_s``; a lease another controller took
    over stops this one (``on_lost``)."""
    while True:
        try:
            if lease is not None:
                await recorder.call(lease.renew)
            await recorder.call(recorder.db.touch_run, recorder.run_id)
        except LeaseLost as exc:
            on_lost(RunHalted(str(exc)))
            return
        await asyncio.sleep(every_s)


async def wall_clock(seconds: float, begun: float, on_reached: Callable[[str], None]) -> None:
    """Stop the run ``seconds`` after ``begun`` (start-up and the initial program count)."""
    await asyncio.sleep(max(0.0, begun + seconds - time.monotonic()))
    on_reached(f"max_wall_time {seconds:g} s reached")


class WallClock:
    """The run's wall-time limit, which a ``budget`` command may change: (re)started as one of the
    run's tasks through ``spawn``, counted from ``begun`` (the command's start)."""

    def __init__(
        self,
        spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None] | None],
        begun: float,
        on_reached: Callable[[str], None],
    ) -> None:
        self._spawn = spawn
        self._begun = begun
        self._on_reached = on_reached
        self._task: asyncio.Task[None] | None = None

    def start(self, seconds: float | None) -> None:
        """Count ``seconds`` from the start (none: no limit), replacing the limit running."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if seconds is not None:
            self._task = self._spawn(wall_clock(seconds, self._begun, self._on_reached))


__all__ = ["WallClock", "heartbeat", "wall_clock"]
