"""Run one candidate in a sandboxed child and decide how it ended.

The run itself is delegated to a :class:`Launcher`: a supervisor inside the sandbox (a warm
template, or a fresh one for a cold run) makes the slot's working directory afresh, forks the
candidate, reads its private result channel and its output, enforces the wall-time limit and
kills the whole process tree at the end, on timeout and on cancellation, so that nothing is left
running. This module turns what it collected into a :class:`RunOutcome`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from evaluators.outcome import Ending, RunOutcome, decide

#: Default largest JSON report read from a candidate (``limits.max_report_kb``); anything
#: bigger is a bad_output. Decoding JSON takes some twenty times its size in memory.
MAX_REPORT_BYTES = 2**20
#: Reports larger than this are decoded in a worker thread, off the event loop.
_DECODE_INLINE_BYTES = 64 * 1024


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
    max_report_bytes: int = MAX_REPORT_BYTES

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


@dataclass(frozen=True)
class RunRequest:
    """One run for a supervisor: the code, the runner's config and what to keep of the pipes."""

    code: str
    config: dict[str, Any]
    timeout_s: float
    output_head: int
    output_tail: int
    report_max: int = MAX_REPORT_BYTES + 1
    channel_fd: int | None = None  # an interactive run's end of its channel (this process's fd)
    cpu_s: float = 0.0  # CPU time for all of the candidate's processes together (0: unchecked)


@dataclass(frozen=True)
class Collected:
    """What a supervisor saw of one run."""

    returncode: int | None  # negative: killed by that signal; None: unknown
    timed_out: bool
    report: bytes = b""
    report_total: int = 0  # bytes written on the result channel (more than ``report`` if cut)
    output: str = ""
    supervisor_lost: bool = False  # the sandbox's supervisor died or answered nonsense
    cpu_exceeded: bool = False  # killed by the launcher: its processes used ``RunRequest.cpu_s``
    cpu_used_s: float = 0.0  # the CPU time they had used then (all of them together)
    scratch_lost: bool = False  # the supervisor could not mount the scratch it was asked for


class Launcher(Protocol):
    """Runs one candidate at a time in its slot's sandbox."""

    async def run(self, request: RunRequest) -> Collected:
        """Run the candidate to its end (or its wall-time limit) and collect what it left;
        cancelling kills its tree before the cancellation propagates."""
        ...


def output_text(head: bytes, tail: bytes, total: int) -> str:
    """The captured output as text: head and tail, with a marker saying how much was dropped
    between them."""
    dropped = total - len(head) - len(tail)
    if dropped <= 0:
        return (head + tail).decode("utf-8", "replace")
    marker = f"\n[... {dropped} bytes of output truncated ...]\n"
    return head.decode("utf-8", "replace") + marker + tail.decode("utf-8", "replace")


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
    channel_fd: int | None = None,
) -> RunOutcome:
    """Run ``code`` once; every way it can end becomes a :class:`RunOutcome`. ``channel_fd``,
    when given, is handed to the candidate as its channel to an environment.

    Cancelling this coroutine kills the candidate's tree before the cancellation propagates.
    """
    start = time.monotonic()
    half = spec.max_output_kb * 512
    collected = await launcher.run(
        RunRequest(
            code=code,
            config=spec.runner_config(env, confinement.uid, confinement.cgroup_procs),
            timeout_s=spec.timeout_s,
            output_head=half,
            output_tail=half,
            channel_fd=channel_fd,
            report_max=spec.max_report_bytes + 1,
            cpu_s=spec.cpu_s,
        )
    )
    ending = Ending(
        report=collected.report,
        report_truncated=collected.report_total > spec.max_report_bytes,
        returncode=collected.returncode,
        timed_out=collected.timed_out,
        supervisor_lost=collected.supervisor_lost,
        cpu_exceeded=collected.cpu_exceeded,
        cpu_used_s=collected.cpu_used_s,
        timeout_s=spec.timeout_s,
        cpu_s=spec.cpu_s,
        max_report_bytes=spec.max_report_bytes,
    )
    if len(ending.report) > _DECODE_INLINE_BYTES:
        status, value, message = await asyncio.to_thread(decide, ending)
    else:
        status, value, message = decide(ending)
    return RunOutcome(
        status=status,
        output=value,
        message=message,
        output_text=collected.output,
        wall_time_s=time.monotonic() - start,
    )
