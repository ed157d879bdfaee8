"""Cold launch: a fresh isolated interpreter per candidate (``python -I child.py run``)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evaluators.reaper import kill_tree

#: The trusted runner script, run as a file because ``-I`` keeps the project off ``sys.path``.
RUNNER = Path(__file__).resolve().parent / "child.py"
_CONFIG_NAME = ".runner.json"


class ColdChild:
    """A runner started as its own session; killing it kills its tree."""

    def __init__(self, proc: asyncio.subprocess.Process, uid: int | None) -> None:
        self._proc = proc
        self._uid = uid

    async def wait(self) -> int:
        return await self._proc.wait()

    def kill(self) -> None:
        kill_tree(self._proc.pid, self._uid)


class ColdLauncher:
    """Start ``[*prefix, python, -I, child.py, run, config]`` for each candidate.

    Args:
        python: the candidates' interpreter.
        prefix: a command that wraps the interpreter (bubblewrap's argv), or empty.
    """

    def __init__(self, python: str, prefix: Sequence[str] = ()) -> None:
        self._python = python
        self._prefix = tuple(prefix)

    async def launch(
        self, workdir: Path, cfg: dict[str, Any], env: dict[str, str], result_w: int, output_w: int
    ) -> ColdChild:
        config = workdir / _CONFIG_NAME
        config.write_text(json.dumps(cfg), encoding="utf-8")
        argv = [*self._prefix, self._python, "-I", str(RUNNER), "run", str(config)]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=result_w,
            stderr=output_w,
            cwd=workdir,
            env=env,
            start_new_session=True,
        )
        return ColdChild(proc, cfg.get("uid"))
