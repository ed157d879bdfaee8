"""Run one candidate in a sandboxed child and collect how it ended.

The launch itself (a fresh interpreter, or a fork of a warm template) is delegated to a
:class:`Launcher`, which also makes the slot's working directory afresh for each candidate;
this module owns what is common: the two pipes (private result channel, captured
stdout/stderr), the wall-time limit, and killing the whole process tree on timeout, on
cancellation and after every run, so that nothing is left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from evaluators.capture import PipeReader
from evaluators.outcome import Ending, RunOutcome, decide

#: Largest JSON report read from a candidate; anything bigger is a bad_output.
MAX_REPORT_BYTES = 64 * 2**20
#: How long to wait for the pipes to reach EOF once the tree is dead.
_DRAIN_S = 2.0


@dataclass(frozen=True)
class RunSpec:
    """What to call in the candidate and under which limits."""

    entry: str
    entry_kwargs: Mapping[str, object] = field(default_factory=dict)
    timeout_s: float = 30.0
    cpu_s: float = 30.0
    memory_mb: int = 2048
    max_processes: int = 64
    max_file_mb: int = 64
    max_output_kb: int = 64

    def runner_config(
        self, env: dict[str, str], uid: int | None, cgroup_procs: str | None
    ) -> dict[str, Any]:
        """The JSON config the trusted runner (``child.py``) reads."""
        return {
            "entry": self.entry,
            "entry_kwargs": dict(self.entry_kwargs),
            "env": env,
            "uid": uid,
            "gid": uid,
            "cgroup_procs": cgroup_procs,
            "limits": {
                "cpu_s": self.cpu_s,
                "as_bytes": self.memory_mb * 2**20,
                "fsize_bytes": self.max_file_mb * 2**20,
                # RLIMIT_NPROC counts every process of the uid; it only binds a non-root uid.
                "nproc": self.max_processes if uid is not None else None,
                "nproc_extra": self.max_processes if uid is None else None,
            },
        }


class Launched(Protocol):
    """A started runner."""

    async def wait(self) -> int:
        """Wait for the runner to end; its return code (negative: killed by that signal)."""
        ...

    def kill(self) -> None:
        """SIGKILL the runner's whole process tree (all that is left of it once it has ended).

        Idempotent, synchronous and never raises, so it can run while a task is cancelled.
        """
        ...


class Launcher(Protocol):
    """Starts the trusted runner for one candidate, in its slot's working directory."""

    async def launch(
        self, code: str, config: dict[str, Any], result_w: int, output_w: int
    ) -> Launched:
        """Make the working directory afresh with ``code`` in it and start the runner there,
        with its config and two pipes."""
        ...


@dataclass(frozen=True)
class Confinement:
    """Who the candidate runs as and which cgroup it joins (both optional)."""

    uid: int | None = None
    cgroup_procs: str | None = None


async def run_candidate(
    launcher: Launcher,
    code: str,
    spec: RunSpec,
    env: dict[str, str],
    confinement: Confinement = Confinement(),
) -> RunOutcome:
    """Run ``code`` once; every way it can end becomes a :class:`RunOutcome`.

    Cancelling this coroutine kills the candidate's tree before the cancellation propagates.
    """
    cfg = spec.runner_config(env, confinement.uid, confinement.cgroup_procs)
    start = time.monotonic()
    result = PipeReader(head=MAX_REPORT_BYTES + 1, tail=0)
    output = PipeReader(head=spec.max_output_kb * 512, tail=spec.max_output_kb * 512)
    result_r, result_w = os.pipe()
    output_r, output_w = os.pipe()
    child: Launched | None = None
    timed_out = killed = False
    returncode: int | None = None
    try:
        await result.start(result_r)
        await output.start(output_r)
        try:
            child = await launcher.launch(code, cfg, result_w, output_w)
        finally:
            os.close(result_w)
            os.close(output_w)
        try:
            async with asyncio.timeout(spec.timeout_s):  # no extra task, unlike wait_for
                returncode = await child.wait()
        except TimeoutError:
            timed_out = True
        child.kill()
        killed = True
        if timed_out:
            with contextlib.suppress(TimeoutError):
                returncode = await asyncio.wait_for(child.wait(), _DRAIN_S)
        await result.wait_eof(_DRAIN_S)
        await output.wait_eof(0.2)
    finally:
        if child is not None and not killed:  # cancelled or failed: kill before propagating
            child.kill()
        result.close()
        output.close()
    ending = Ending(
        report=result.data(),
        report_truncated=result.total > MAX_REPORT_BYTES,
        returncode=returncode,
        timed_out=timed_out,
        timeout_s=spec.timeout_s,
        cpu_s=spec.cpu_s,
        max_report_bytes=MAX_REPORT_BYTES,
    )
    status, value, message = decide(ending)
    return RunOutcome(
        status=status,
        output=value,
        message=message,
        output_text=output.text(),
        wall_time_s=time.monotonic() - start,
    )
