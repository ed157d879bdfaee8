"""Cold launch: a fresh isolated interpreter per candidate (``python -I child.py run``)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evaluators.child import CONFIG_FILE, prepare_workdir

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


def write_runner_config(workdir: Path, config: dict[str, Any]) -> Path:
    """Write the runner's config into ``workdir``, readable by its owner only; the runner reads
    and deletes it before the candidate starts."""
    path = workdir / CONFIG_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(config, fh)
    return path


class ColdLauncher:
    """Start ``[*prefix, python, -I, child.py, run, config]`` for each candidate.

    The working directory is made afresh before each launch (what the previous candidate left
    is removed then, or when the pool closes).

    Args:
        python: the candidates' interpreter.
        prefix: a command that wraps the interpreter (bubblewrap's argv), or empty.
        env: the runner's environment (the candidate's, already scrubbed).
        host_kill: kills a runner's whole tree given its pid (process group, uid, cgroup).
        workdir: the candidates' working directory (inside the slot's directory).
    """

    def __init__(
        self,
        python: str,
        prefix: Sequence[str],
        env: dict[str, str],
        host_kill: Callable[[int | None], None],
        workdir: Path,
    ) -> None:
        self._python = python
        self._prefix = tuple(prefix)
        self._env = env
        self._host_kill = host_kill
        self._workdir = workdir

    async def launch(
        self, code: str, config: dict[str, Any], result_w: int, output_w: int
    ) -> ColdChild:
        # Off the loop: clearing what the previous candidate left may be a whole tree.
        await asyncio.to_thread(prepare_workdir, str(self._workdir), code, config.get("uid"))
        path = write_runner_config(self._workdir, config)
        argv = [*self._prefix, self._python, "-I", str(RUNNER), "run", str(path)]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=result_w,
            stderr=output_w,
            cwd=self._workdir,
            env=self._env,
            start_new_session=True,
        )
        return ColdChild(proc, self._host_kill)
