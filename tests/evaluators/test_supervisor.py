"""The candidate against its supervisor: it can neither read, trace, stop nor kill it, and no
reply is ever credited to a program it does not answer.

Each case runs with the system's bubblewrap (where installed), with the bundled one, and without
namespaces (a sandbox uid, or, where this setup has none, the explicit unconfined opt-in).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from evaluators import isolation
from evaluators.local import LocalEvaluator
from evaluators.reaper import children
from evaluators.warm import WarmTemplate
from evolve.config import EvaluatorConfig
from evolve.problem import Problem
from evolve.records import Status
from tests.evaluators.conftest import without_namespaces

pytestmark = pytest.mark.asyncio(loop_scope="module")

_FINE = "def run():\n    return {'x': 7}\n"


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["system", "bundled", "none"])
async def sandbox(request: pytest.FixtureRequest) -> AsyncIterator[LocalEvaluator]:
    """One warm evaluator with one slot per setup, shared by the cases of this module."""
    from evolve.problem import load_problem
    from tests.evaluators.conftest import FIXTURE

    problem: Problem = load_problem(FIXTURE)
    if request.param == "none":
        ev = await without_namespaces(problem, concurrency=1)
    else:
        binary = isolation.system_bwrap() if request.param == "system" else isolation.bundled_bwrap()
        if binary is None:
            pytest.skip(f"no {request.param} bubblewrap on this machine")
        ev = LocalEvaluator(problem, EvaluatorConfig(concurrency=1, isolation="bwrap", bwrap=binary))
        await ev.evaluate(_FINE)
    try:
        yield ev
    finally:
        await ev.aclose()


def _template(ev: LocalEvaluator) -> WarmTemplate:
    slots = ev._slots._slots  # the one slot's warm template
    assert len(slots) == 1 and len(slots[0].templates) == 1
    return slots[0].templates[0]


_ATTACK = r"""
import ctypes, os, signal, time

def run():
    sup = os.getppid()
    got = 0
    for bit, name in ((1, 'environ'), (2, 'mem'), (4, 'fd')):
        try:
            if name == 'fd':
                os.listdir(f'/proc/{sup}/fd')
            else:
                open(f'/proc/{sup}/{name}', 'rb').read(1)
            got |= bit
        except OSError:
            pass
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(16, sup, 0, 0) == 0:  # PTRACE_ATTACH
        got |= 8
    try:
        pidfd = os.pidfd_open(sup)
        for fd in range(3, 16):  # pidfd_getfd: the supervisor's socket to the pool
            if libc.syscall(438, pidfd, fd, 0) >= 0:
                got |= 16
                break
    except OSError:
        pass
    for sig in (signal.SIGSTOP, signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(sup, sig)
        except OSError:
            pass
    time.sleep(0.2)
    return {'x': got}
"""


async def test_the_candidate_cannot_reach_its_supervisor(sandbox: LocalEvaluator) -> None:
    assert sandbox.isolation is not None
    if sandbox.isolation.kind == "unconfined":
        pytest.skip("isolation=unsafe-unconfined was the only choice here: exposed by design")
    result = await sandbox.evaluate(_ATTACK)
    # Nothing read or traced, and the signals changed nothing: the reply still came, in time,
    # from the supervisor, which goes on serving.
    assert result.status is Status.EVALUATED, result.error
    assert result.metrics == {"score": 0.0}
    assert (await sandbox.evaluate(_FINE)).metrics == {"score": 7.0}


def _forged_reply(token: str, x: float) -> bytes:
    report = json.dumps({"status": "ok", "output": {"x": x}}).encode()
    header = {
        "token": token, "pid": 1, "wait_status": 0, "timed_out": False,
        "report_total": len(report), "output_total": 0, "sizes": [len(report), 0, 0],
    }  # fmt: skip
    return json.dumps(header).encode() + b"\n" + report


async def test_a_stale_or_forged_reply_is_never_credited_to_another_program(
    sandbox: LocalEvaluator,
) -> None:
    assert (await sandbox.evaluate(_FINE)).metrics == {"score": 7.0}  # the template is up
    # A reply waiting before the request is answered (a late answer to an abandoned request,
    # or one a candidate managed to send) must not become the next program's result.
    _template(sandbox)._replies.put_nowait((_forged_reply("0" * 32, 99.0), []))
    nan = "def run():\n    return {'x': float('nan')}\n"
    result = await sandbox.evaluate(nan)
    assert result.status is Status.BAD_OUTPUT, result
    assert (await sandbox.evaluate(_FINE)).metrics == {"score": 7.0}


async def test_a_killed_supervisor_is_reported_as_such(sandbox: LocalEvaluator) -> None:
    assert (await sandbox.evaluate(_FINE)).metrics == {"score": 7.0}
    proc = _template(sandbox)._proc
    assert proc is not None
    # bubblewrap's child is the supervisor (PID 1 of the sandbox); without it, the process itself
    supervisor = children(proc.pid)[0] if sandbox.isolation and sandbox.isolation.kind == "bwrap" else proc.pid
    task = asyncio.create_task(sandbox.evaluate("import time\ndef run():\n    time.sleep(5)\n"))
    await asyncio.sleep(0.5)
    os.kill(supervisor, signal.SIGKILL)
    result = await task
    assert result.status is Status.EXCEPTION, result
    assert result.error is not None and "supervisor died" in result.error.message
    assert "CPU" not in result.error.message
    assert (await sandbox.evaluate(_FINE)).metrics == {"score": 7.0}
