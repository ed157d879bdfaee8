"""Cold launch: a fresh isolated interpreter per candidate.

Each candidate gets its own supervisor (``python -I child.py serve``, importing nothing of the
problem), which runs it exactly as a warm template would and is stopped afterwards, with a sweep
of everything the slot may still have running.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from evaluators.cpu_budget import CpuMeter
from evaluators.sandbox import Collected, RunRequest
from evaluators.warm import WarmTemplate


class ColdLauncher:
    """Start a fresh supervisor for each candidate and stop it once the candidate has ended.

    Args:
        python: the candidates' interpreter.
        prefix: a command that wraps the interpreter (bubblewrap's argv), or empty.
        slot_dir: the supervisor's working directory.
        workdir: the candidates' working directory (inside ``slot_dir``), made afresh for each.
        env: the supervisor's environment (already scrubbed).
        host_kill: kills the candidate from the host side, cheaply (its cgroup).
        sweep: kills everything the slot may still have running once the supervisor is stopped.
        cpu: reads the slot's CPU time (see :class:`WarmTemplate`), or None.
    """

    def __init__(
        self,
        python: str,
        prefix: Sequence[str],
        slot_dir: Path,
        workdir: Path,
        env: dict[str, str],
        host_kill: Callable[[], None],
        sweep: Callable[[], None],
        cpu: CpuMeter | None = None,
    ) -> None:
        self._supervisor = partial(
            WarmTemplate, python, prefix, slot_dir, workdir, env, (), host_kill, sweep, cpu
        )

    async def run(self, request: RunRequest) -> Collected:
        supervisor = self._supervisor()
        try:
            return await supervisor.run(request)
        finally:
            await supervisor.aclose()
