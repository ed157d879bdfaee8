"""Trusted environment worker: imports a problem's environment once and plays episodes on request.

Run as ``python episode_host.py SCORER_PATH FUNCTION SYS_PATH_JSON CONTROL_FD``. The control fd
is a ``SOCK_SEQPACKET`` socket to the evaluator. Each request is one message,
``{"stage": name or null, "entry_kwargs": {...}}``, carrying the environment's end of a fresh
channel to the candidate (``SCM_RIGHTS``). The environment function is called as
``fn(channel)`` (plus ``stage=`` and ``entry_kwargs=`` when its signature names them) with an
:class:`evolve.interactive.Channel`, which is closed when it returns; the reply is one message
in :mod:`scorer_host`'s format, plus ``"program_gone"``: whether the episode ended because the
candidate closed its end (it ended, or died) rather than by the environment's decision. fd 1 is pointed at stderr, so an environment that prints is
harmless. It never sees candidate code, only what the candidate sends on the channel, and it
makes itself non-dumpable, so that a candidate running as the same user cannot read the hidden
state from its memory.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import socket
import sys
from typing import Any

#: The largest reply; a longer feedback text is cut to fit.
MAX_REPLY = 1 << 20


def _fds(ancdata: list[tuple[int, int, bytes]]) -> list[int]:
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(data) - len(data) % 4
            fds.extend(int.from_bytes(data[i : i + 4], sys.byteorder) for i in range(0, usable, 4))
    return fds


def _reply(reply: dict[str, Any], encode: Any) -> bytes:
    data: bytes = encode(reply)
    if len(data) > MAX_REPLY and reply.get("kind") == "ok":
        reply = {**reply, "feedback": str(reply.get("feedback", ""))[: MAX_REPLY // 2]}
        data = encode(reply)
    return data[:MAX_REPLY]


def _play(fn: Any, params: set[str], channel: Any, request: dict[str, Any]) -> dict[str, Any]:
    """One episode, with the reply :mod:`scorer_host` would give for a scorer and whether the
    program went away; the channel is closed at the end, so the candidate reads end of file."""
    from evaluators.scorer_host import _score

    try:
        reply = _score(lambda _output, **kw: fn(channel, **kw), params, {**request, "output": None})
    finally:
        channel.close()
    return {**reply, "program_gone": channel.program_gone}


def main(path: str, function: str, sys_path: list[str], control_fd: int) -> None:
    for entry in reversed(sys_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    from evaluators.child import PR_SET_DUMPABLE, prctl
    from evaluators.scorer_host import _encode, _load
    from evolve.interactive import Channel

    control = socket.socket(fileno=control_fd)
    os.dup2(2, 1)
    with contextlib.suppress(OSError, AttributeError):
        # Not dumpable: a candidate that runs as this user (no bubblewrap, no sandbox uid)
        # cannot read the hidden state from this process's memory or attach to it.
        prctl(PR_SET_DUMPABLE, 0)
    try:
        fn = _load(path, function)
        params = set(inspect.signature(fn).parameters)
    except Exception as exc:
        control.send(_encode({"kind": "fatal", "message": f"{type(exc).__name__}: {exc}"}))
        return
    control.send(_encode({"kind": "ready"}))
    while True:
        msg, ancdata, _flags, _addr = control.recvmsg(1 << 16, socket.CMSG_SPACE(4))
        fds = _fds(ancdata)
        if not msg:
            return
        request = json.loads(msg)
        if not fds:
            control.send(_encode({"kind": "error", "message": "no channel came with the request"}))
            continue
        for extra in fds[1:]:
            os.close(extra)
        control.send(_reply(_play(fn, params, Channel(socket.socket(fileno=fds[0])), request), _encode))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]))
