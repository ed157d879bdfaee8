"""Warm launch: a template process per slot that has pre-imported the problem's modules.

Starting an interpreter and importing numpy costs about a tenth of a second; forking a template
that already did costs about a millisecond. The template (``child.py serve``) runs inside the
same sandbox a cold run would (bubblewrap or not) and forks one fresh child per candidate, which
applies the same limits and privileges drop as a cold run. The pool talks to it over a
``SOCK_SEQPACKET`` socket and hands it the candidate's code, its runner config and its two pipes
as file descriptors; the template makes the working directory and removes it afterwards, so the
controller's side of a launch is one message out and two back.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evaluators.child import write_all
from evaluators.cold import RUNNER
from evaluators.reaper import kill_tree

#: How long to wait for the template to confirm a kill before killing the template itself.
_KILL_GRACE_S = 2.0
#: Largest launch message; a larger request travels in a memfd attached to a short one.
#: (The template reads messages of up to 64 KiB; a SOCK_SEQPACKET message cannot be split.)
_MAX_MESSAGE = 48 * 1024


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
        host_kill: kills a candidate's tree from the host side, cheaply (process group,
            cgroup); called with the candidate's pid when that pid is valid on the host.
        sweep: kills everything the slot may have running (all of its uid); used when the
            template itself is stopped, since the template normally does this inside.
    """

    def __init__(
        self,
        python: str,
        prefix: Sequence[str],
        slot_dir: Path,
        workdir: Path,
        env: dict[str, str],
        imports: Sequence[str],
        host_kill: Callable[[int | None], None],
        sweep: Callable[[], None],
    ) -> None:
        self._argv = [*prefix, python, "-I", str(RUNNER), "serve"]
        self._namespaced = bool(prefix)
        self._slot_dir = slot_dir
        self._workdir = str(workdir)
        self._env = {**env, "EVOLVE_WARM_IMPORTS": json.dumps(list(imports))}
        self._host_kill = host_kill
        self._sweep = sweep
        self._proc: asyncio.subprocess.Process | None = None
        self._sock: socket.socket | None = None
        self._unsettled: int | None = None
        # Replies, read as they arrive by a reader registered once per template (not an epoll
        # registration per receive); None marks the end of the socket.
        self._replies: asyncio.Queue[bytes | None] = asyncio.Queue()

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
    def _on_readable(sock: socket.socket, replies: asyncio.Queue[bytes | None]) -> None:
        while True:
            try:
                data = sock.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                asyncio.get_running_loop().remove_reader(sock.fileno())
                replies.put_nowait(None)
                return
            replies.put_nowait(data)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def ensure_started(self) -> None:
        """Start the template (or restart it after it died)."""
        if not self.running or self._sock is None:
            self.stop()
            await self._start()

    async def _recv(self) -> dict[str, Any]:
        assert self._sock is not None
        data = await self._replies.get()
        if data is None:
            self._replies.put_nowait(None)  # still closed for any later receive
            raise TemplateDied("the warm template exited")
        reply: dict[str, Any] = json.loads(data)
        return reply

    async def launch(
        self, code: str, config: dict[str, Any], result_w: int, output_w: int
    ) -> WarmChild:
        """Have the template make the working directory with ``code`` in it and fork a child
        there, run with ``config`` (nothing of it on disk but the candidate's own file).

        A template found dead (a candidate running as the same user may kill it) is restarted
        once; a second failure is an infrastructure error and propagates.
        """
        await self._settle_previous()
        message = json.dumps({"workdir": self._workdir, "code": code, "config": config}).encode()
        for attempt in (1, 2):
            await self.ensure_started()
            try:
                pid = await self._fork(message, result_w, output_w)
            except (TemplateDied, OSError):
                self.stop()
                if attempt == 2:
                    raise
                continue
            self._unsettled = pid
            return WarmChild(self, pid)
        raise AssertionError("unreachable")

    async def _fork(self, message: bytes, result_w: int, output_w: int) -> int:
        assert self._sock is not None
        fds = [result_w, output_w]
        payload: int | None = None
        if len(message) > _MAX_MESSAGE:
            payload = os.memfd_create("evolve-launch", os.MFD_CLOEXEC)
            write_all(payload, message)
            fds.append(payload)
            message = b'{"payload": "fd"}'
        try:
            self._sock.sendmsg(
                [message], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
            )
            reply = await self._recv()
            return int(reply["pid"])
        except (TemplateDied, OSError):
            raise
        except BaseException:  # cancelled, or garbage: a child may exist that we cannot name
            self.stop()
            raise
        finally:
            if payload is not None:
                os.close(payload)

    async def wait_for(self, pid: int) -> int:
        """The return code of child ``pid`` once the template has reaped it and its tree.

        Cancelling this wait loses nothing (the reply stays in the socket); the next launch
        collects it first.
        """
        try:
            reply = await self._recv()
            if reply.get("pid") != pid or "wait_status" not in reply:
                raise TemplateDied(f"the warm template answered out of turn: {reply}")
            code = os.waitstatus_to_exitcode(int(reply["wait_status"]))
        except (TemplateDied, OSError, ValueError, KeyError) as exc:
            self.stop()
            raise TemplateDied(str(exc)) from exc
        self._unsettled = None
        return code

    async def _settle_previous(self) -> None:
        """Collect the end of a child whose waiter was cancelled; kill the template if stuck."""
        if self._unsettled is None:
            return
        try:
            await asyncio.wait_for(self.wait_for(self._unsettled), _KILL_GRACE_S)
        except (TimeoutError, TemplateDied):
            self.stop()
        self._unsettled = None

    def kill_child(self, pid: int) -> None:
        """Kill ``pid``'s tree from the host side and ask the template to do the same."""
        self._host_kill(None if self._namespaced else pid)
        if self._sock is not None and self.running:
            with contextlib.suppress(OSError):
                self._sock.send(json.dumps({"kill": pid}).encode())

    def stop(self) -> None:
        """Kill the template and everything in its sandbox."""
        if self._sock is not None:
            with contextlib.suppress(RuntimeError, ValueError):  # loop closed, fd gone
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
            self._replies.put_nowait(None)
        if self._proc is not None and self._proc.returncode is None:
            kill_tree(self._proc.pid, follow_parents=False)
        self._unsettled = None
        self._sweep()

    async def aclose(self) -> None:
        proc = self._proc
        self.stop()
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                await proc.wait()
        self._proc = None


class WarmChild:
    """A candidate forked by a template."""

    def __init__(self, template: WarmTemplate, pid: int) -> None:
        self._template = template
        self._pid = pid
        self._ended = False

    async def wait(self) -> int:
        try:
            code = await self._template.wait_for(self._pid)
        except TemplateDied:
            code = -signal.SIGKILL
        self._ended = True
        return code

    def kill(self) -> None:
        """Kill the child's tree; once the template reported the end, it already did."""
        if not self._ended:
            self._template.kill_child(self._pid)
