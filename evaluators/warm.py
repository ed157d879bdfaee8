"""The pool's side of a sandbox supervisor (``child.py serve``): one per slot when warm.

Starting an interpreter and importing numpy costs about a tenth of a second; forking a template
that already did costs about a millisecond. The template runs inside the same sandbox a cold run
would (bubblewrap or not) and supervises one candidate per request: it makes the working
directory, forks a fresh child (which applies the limits and drops privileges), reads the
child's result channel and output, enforces the wall-time limit, kills the child's whole tree
and answers with one message. So the controller's side of a run is one message out and one back
over a ``SOCK_SEQPACKET`` socket; a request or reply too large for a message travels in a memfd.
A cold run is the same with a fresh template (importing nothing) for each candidate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from evaluators.child import fds_of, read_memfd, send_message
from evaluators.cpu_budget import CpuBudget, CpuMeter
from evaluators.reaper import kill_tree
from evaluators.sandbox import Collected, RunRequest, output_text

logger = logging.getLogger(__name__)

#: The trusted runner script, run as a file because ``-I`` keeps the project off ``sys.path``.
RUNNER = Path(__file__).resolve().parent / "child.py"
#: How long to wait for the template to finish a run it was told to kill, before killing it.
_KILL_GRACE_S = 2.0
#: How long past the wall-time limit the template may take to answer (it kills the tree and
#: drains the pipes first) before it is taken for hung and killed itself.
_ANSWER_GRACE_S = 5.0
#: A received message: its bytes (empty at the end of the socket) and any fds it carried.
_Message = tuple[bytes, list[int]]


class TemplateDied(Exception):
    """The template process ended or stopped answering."""


class WarmTemplate:
    """One template process; it serves one candidate at a time.

    Args:
        python: the candidates' interpreter.
        prefix: bubblewrap's argv, or empty.
        slot_dir: the template's working directory.
        workdir: the candidates' working directory (inside ``slot_dir``), made afresh for each.
        env: the template's environment (already scrubbed; imports listed separately).
        imports: modules to import once in the template.
        host_kill: kills what the slot's candidate may have running, from the host side and
            cheaply (its cgroup); used when a run is cancelled.
        sweep: kills everything the slot may have running (all of its uid); used when the
            template itself is stopped, since the template normally does this inside.
        cpu: reads the slot's CPU time (its cgroup), to hold each candidate's processes together
            to the request's ``cpu_s``; None where there is no such count.
    """

    def __init__(
        self,
        python: str,
        prefix: Sequence[str],
        slot_dir: Path,
        workdir: Path,
        env: dict[str, str],
        imports: Sequence[str],
        host_kill: Callable[[], None],
        sweep: Callable[[], None],
        cpu: CpuMeter | None = None,
    ) -> None:
        self._argv = [*prefix, python, "-I", str(RUNNER), "serve"]
        self._slot_dir = slot_dir
        self._workdir = str(workdir)
        self._env = {**env, "EVOLVE_WARM_IMPORTS": json.dumps(list(imports))}
        self._host_kill = host_kill
        self._sweep = sweep
        self._cpu = cpu
        self._proc: asyncio.subprocess.Process | None = None
        self._sock: socket.socket | None = None
        self._unsettled = False  # a run whose reply has not been collected (it was cancelled)
        self._scratch_reported = False  # a lost scratch is reported once per template
        # Replies, read as they arrive by a reader registered once per template (not an epoll
        # registration per receive); an empty message marks the end of the socket.
        self._replies: asyncio.Queue[_Message] = asyncio.Queue()

    async def _start(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self._argv,
                str(child.fileno()),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=self._slot_dir,
                env=self._env,
                start_new_session=True,
                pass_fds=(child.fileno(),),
            )
        finally:
            child.close()
        parent.setblocking(False)
        self._sock = parent
        self._replies = asyncio.Queue()
        asyncio.get_running_loop().add_reader(
            parent.fileno(), self._on_readable, parent, self._replies
        )

    @staticmethod
    def _on_readable(sock: socket.socket, replies: asyncio.Queue[_Message]) -> None:
        while True:
            try:
                data, ancdata, _flags, _addr = sock.recvmsg(1 << 16, socket.CMSG_SPACE(4))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data, ancdata = b"", []
            fds = fds_of(ancdata)
            if not data:
                for fd in fds:
                    os.close(fd)
                asyncio.get_running_loop().remove_reader(sock.fileno())
                replies.put_nowait((b"", []))
                return
            replies.put_nowait((data, fds))

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def ensure_started(self) -> bool:
        """Start the template (or restart it after it died); whether it was (re)started."""
        if self.running and self._sock is not None:
            return False
        self.stop()
        if self._proc is not None:  # reap the one that died (it was killed by stop)
            with contextlib.suppress(ProcessLookupError, TimeoutError):
                await asyncio.wait_for(self._proc.wait(), _KILL_GRACE_S)
        await self._start()
        return True

    async def _until_ready(self, within_s: float) -> None:
        """Wait (at most ``within_s``) until a template just started has done its imports and
        answers, so that its start-up is not counted as the next candidate's CPU time. A
        template that dies or is slower is left to the run, as without this wait."""
        token = secrets.token_hex(16)
        with contextlib.suppress(OSError, TimeoutError, TemplateDied):
            assert self._sock is not None
            self._sock.send(json.dumps({"ready": token}).encode())
            async with asyncio.timeout(within_s):
                await self._reply_to(token)

    async def run(self, request: RunRequest) -> Collected:
        """Run one candidate to its end and collect what it left.

        A template found dead (a candidate running as the same user may kill it) is restarted
        once; a second failure is an infrastructure error and propagates. A template that dies
        during the run counts as the candidate killed; one that does not answer in time is
        killed and the run counts as timed out. Cancelling kills the candidate first.
        """
        await self._settle_previous()
        token = secrets.token_hex(16)
        message = json.dumps(
            {
                "workdir": self._workdir,
                "code": request.code,
                "config": request.config,
                "timeout_s": request.timeout_s,
                "report_max": request.report_max,
                "output_head": request.output_head,
                "output_tail": request.output_tail,
                "channel": request.channel_fd is not None,
            }
        ).encode()
        fds = () if request.channel_fd is None else (request.channel_fd,)
        for attempt in (1, 2):
            if await self.ensure_started() and self._cpu is not None:
                await self._until_ready(request.timeout_s)
            try:
                assert self._sock is not None
                send_message(self._sock, message, "evolve-request", fds)
                self._sock.send(json.dumps({"token": token}).encode())
                break
            except OSError:
                self.stop()
                if attempt == 2:
                    raise
        self._unsettled = True
        loop = asyncio.get_running_loop()
        budget = None
        if self._cpu is not None and request.cpu_s > 0:
            budget = CpuBudget(self._cpu, request.cpu_s, loop.time())
        try:
            reply = await self._reply_within(token, request.timeout_s + _ANSWER_GRACE_S, budget)
        except TimeoutError:
            self.stop()
            return Collected(returncode=None, timed_out=True)
        except TemplateDied:
            self.stop()
            return Collected(returncode=None, timed_out=False, supervisor_lost=True)
        except BaseException:  # cancelled: the candidate dies before the cancellation goes on
            self._kill_current()
            raise
        self._unsettled = False
        collected = _collected(reply)
        if collected.supervisor_lost:
            self.stop()
        if collected.scratch_lost and not self._scratch_reported:
            self._scratch_reported = True
            logger.warning(
                "the sandbox's supervisor could not mount the scratch file system it was asked "
                "for (it could at start): bubblewrap's own /tmp and /dev/shm hold this slot's "
                "candidates, their file count not bounded (their size only where bubblewrap "
                "can bound it)"
            )
        if budget is not None and budget.exceeded:
            collected = replace(collected, cpu_exceeded=True, cpu_used_s=budget.used_s)
        return collected

    async def _reply_within(self, token: str, within_s: float, budget: CpuBudget | None) -> bytes:
        """The reply to ``token`` (see :meth:`_reply_to`) within ``within_s``. Meanwhile the
        run's CPU time is checked when it could have reached its ``budget``; at the budget, the
        candidate is killed, all of its processes, and the supervisor's reply follows.

        Raises:
            TimeoutError: no reply in time.
            TemplateDied: see :meth:`_reply_to`.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while True:
            watching = budget is not None and not budget.exceeded
            until = min(deadline, budget.next_check) if budget and watching else deadline
            try:
                async with asyncio.timeout_at(until):
                    return await self._reply_to(token)
            except TimeoutError:
                if not watching or until >= deadline:
                    raise
            assert budget is not None
            if budget.check(loop.time()):
                self._kill_current()

    async def _reply_to(self, token: str) -> bytes:
        """The reply whose header carries ``token``; any other (a stale reply to an abandoned
        request, or a forgery) is dropped, so it is never credited to this request's program.

        Raises:
            TemplateDied: the template ended, or answered something that is not a reply.
        """
        while True:
            reply = await self._recv()
            try:
                if _header(reply).get("token") == token:
                    return reply
            except (ValueError, TypeError) as exc:
                raise TemplateDied(f"the sandbox's supervisor answered garbage: {exc}") from exc

    async def _recv(self) -> bytes:
        data, fds = await self._replies.get()
        if not data:
            self._replies.put_nowait((b"", []))  # still closed for any later receive
            raise TemplateDied("the warm template exited")
        if fds:  # the reply is in a memfd
            for fd in fds[1:]:
                os.close(fd)
            data = read_memfd(fds[0])
        return data

    async def _settle_previous(self) -> None:
        """Collect the end of a run whose waiter was cancelled; kill the template if stuck."""
        if not self._unsettled:
            return
        try:
            await asyncio.wait_for(self._recv(), _KILL_GRACE_S)
        except (TimeoutError, TemplateDied):
            self.stop()
        self._unsettled = False

    def _kill_current(self) -> None:
        """Kill the running candidate's tree: from the host side, and by asking the template."""
        self._host_kill()
        if self._sock is not None and self.running:
            with contextlib.suppress(OSError):
                self._sock.send(b'{"kill": true}')

    def stop(self) -> None:
        """Kill the template and everything in its sandbox."""
        if self._sock is not None:
            with contextlib.suppress(RuntimeError, ValueError):  # loop closed, fd gone
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
            self._replies.put_nowait((b"", []))
        if self._proc is not None and self._proc.returncode is None:
            kill_tree(self._proc.pid, follow_parents=False)
        self._unsettled = False
        self._sweep()

    async def aclose(self) -> None:
        proc = self._proc
        self.stop()
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                await proc.wait()
        self._proc = None


def _header(reply: bytes) -> dict[str, Any]:
    """The JSON header line of a reply (ValueError or TypeError if there is none)."""
    header = json.loads(reply.partition(b"\n")[0])
    if not isinstance(header, dict):
        raise TypeError("the reply's header is not an object")
    return header


def _collected(reply: bytes) -> Collected:
    """Decode the template's reply: a JSON header line, then the report and the output's head
    and tail. A reply that does not add up counts as the supervisor lost."""
    try:
        return _decode(reply)
    except (ValueError, KeyError, TypeError):
        return Collected(returncode=None, timed_out=False, supervisor_lost=True)


def _decode(reply: bytes) -> Collected:
    header = _header(reply)
    body = reply.partition(b"\n")[2]
    n_report, n_head, n_tail = (int(n) for n in header["sizes"])
    if n_report + n_head + n_tail != len(body):
        raise ValueError(f"the reply holds {len(body)} bytes, its header says {header['sizes']}")
    head, tail = body[n_report : n_report + n_head], body[n_report + n_head :]
    return Collected(
        returncode=os.waitstatus_to_exitcode(int(header["wait_status"])),
        timed_out=bool(header["timed_out"]),
        report=body[:n_report],
        report_total=int(header["report_total"]),
        output=output_text(head, tail, int(header["output_total"])),
        scratch_lost=header.get("scratch_lost") is True,
    )
