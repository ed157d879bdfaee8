"""Cold launch: a fresh isolated interpreter per candidate (``python -I child.py run``)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evaluators.sandbox import write_runner_config

#: The trusted runner script, run as a file because ``-I`` keeps the project off ``sys.path``.
RUNNER = Path(__file__).resolve().parent / "child.py"


class ColdChild:
    """A runner started as its own session; killing it kills its tree."""

    def __init__(
        self, proc: asyncio.subprocess.Process, host_kill: Callable[[int | None], None]
    ) -> None:
        self._proc = proc
        self._host_kill = host_kill

    async def wait(self) -> int:
        return await self._proc.wait()

    def kill(self) -> None:
        self._host_kill(self._proc.pid)


class ColdLauncher:
    """Start ``[*prefix, python, -I, child.py, run, config]`` for each candidate.

    Args:
        python: the candidates' interpreter.
        prefix: a command that wraps the interpreter (bubblewrap's argv), or empty.
        env: the runner's environment (the candidate's, already scrubbed).
        host_kill: kills a runner's whole tree given its pid (process group, uid, cgroup).
    """

    def __init__(
        self,
        python: str,
        prefix: Sequence[str],
        env: dict[str, str],
        host_kill: Callable[[int | None], None],
    ) -> None:
        self._python = python
        self._prefix = tuple(prefix)
        self._env = env
        self._host_kill = host_kill

    async def launch(
        self, workdir: Path, config: dict[str, Any], result_w: int, output_w: int
    ) -> ColdChild:
        path = write_runner_config(workdir, config)
        argv = [*self._prefix, self._python, "-I", str(RUNNER), "run", str(path)]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=result_w,
            stderr=output_w,
            cwd=workdir,
            env=self._env,
            start_new_session=True,
        )
        return ColdChild(proc, self._host_kill)
