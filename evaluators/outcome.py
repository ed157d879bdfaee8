"""Turn what a sandboxed run left behind (report bytes, exit status) into a typed outcome."""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass
from typing import Any

from evolve.records import Status


@dataclass(frozen=True)
class RunOutcome:
    """How one candidate run ended.

    ``status`` is ``EVALUATED`` when the candidate returned a JSON value (``output``), which
    still has to pass the trusted scorer; any other status is a failure described by ``message``.
    """

    status: Status
    output: Any = None
    message: str = ""
    output_text: str = ""
    wall_time_s: float = 0.0


@dataclass(frozen=True)
class Ending:
    """Raw facts about the end of a run, gathered by the sandbox."""

    report: bytes
    report_truncated: bool
    returncode: int | None  # negative: killed by that signal
    timed_out: bool
    timeout_s: float
    cpu_s: float
    max_report_bytes: int
    supervisor_lost: bool = False
    cpu_exceeded: bool = False  # all of its processes together used ``cpu_s`` (a cgroup's count)
    cpu_used_s: float = 0.0


_REPORT_STATUS = {
    "syntax_error": Status.SYNTAX_ERROR,
    "exception": Status.EXCEPTION,
    "memory": Status.MEMORY,
    "bad_output": Status.BAD_OUTPUT,
    "sandbox_error": Status.EXCEPTION,
}


def decide(ending: Ending) -> tuple[Status, Any, str]:
    """Status, output and message for a run; the wall-time kill wins over everything else."""
    if ending.timed_out:
        return Status.TIMEOUT, None, f"exceeded the wall-time limit of {ending.timeout_s:g} s"
    if ending.cpu_exceeded:
        return (
            Status.TIMEOUT,
            None,
            f"exceeded the CPU-time limit of {ending.cpu_s:g} s (its processes together used "
            f"{ending.cpu_used_s:.2f} s of CPU)",
        )
    if ending.supervisor_lost:
        return (
            Status.EXCEPTION,
            None,
            "the sandbox's supervisor died or answered nonsense during the run (killed from "
            "inside the sandbox, or by the system); the program's result is unknown",
        )
    if ending.report_truncated:
        limit_kb = ending.max_report_bytes // 1024
        return (
            Status.BAD_OUTPUT,
            None,
            f"the output is larger than {limit_kb} KB of JSON (limits.max_report_kb)",
        )
    if ending.report:
        return _from_report(ending.report)
    return _from_exit(ending)


def _from_report(data: bytes) -> tuple[Status, Any, str]:
    try:
        report = json.loads(data)
    except (ValueError, RecursionError):
        return Status.BAD_OUTPUT, None, "the result channel held something that is not JSON"
    if not isinstance(report, dict):
        return Status.BAD_OUTPUT, None, "the result channel held something that is not a report"
    kind = report.get("status")
    if kind == "ok" and "output" in report:
        return Status.EVALUATED, report["output"], ""
    status = _REPORT_STATUS.get(str(kind), Status.BAD_OUTPUT)
    message = str(report.get("message") or _DEFAULT_MESSAGE.get(status, "unreadable report"))
    return status, None, bounded(message)


#: Longest error text kept from a candidate (it reaches the database and the next prompt).
MAX_MESSAGE_CHARS = 4000


def bounded(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to about ``limit`` characters, keeping its start and its end (where a
    traceback's exception is) and saying how much was dropped."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters cut ...]\n{text[-half:]}"


_DEFAULT_MESSAGE = {Status.MEMORY: "MemoryError: the program ran out of memory"}


def _from_exit(ending: Ending) -> tuple[Status, Any, str]:
    code = ending.returncode
    if code is None or code >= 0:
        return (
            Status.BAD_OUTPUT,
            None,
            f"the program ended (exit code {code}) without returning a result; "
            "it must return from its entry function, not exit or close the result channel",
        )
    sig = -code
    name = _signal_name(sig)
    if sig == signal.SIGXCPU:
        return Status.TIMEOUT, None, f"exceeded the CPU-time limit of {ending.cpu_s:g} s"
    if sig == signal.SIGKILL:
        return (
            Status.TIMEOUT,
            None,
            (
                f"killed by {name} (CPU-time limit of {ending.cpu_s:g} s reached, "
                "or the process was killed by the system)"
            ),
        )
    if sig == signal.SIGXFSZ:
        return Status.EXCEPTION, None, f"killed by {name}: exceeded the file-size limit"
    if sig == signal.SIGSEGV:
        return (
            Status.EXCEPTION,
            None,
            (
                f"crashed with {name} (a C-level stack overflow from deep recursion, or a native crash)"
            ),
        )
    return Status.EXCEPTION, None, f"killed by signal {name}"


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)
