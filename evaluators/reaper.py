"""Kill a candidate's whole process tree, including descendants that left its process group.

Three mechanisms, used together where available:

* the process group (the runner starts its own session): catches every ordinary child;
* the sandbox uid: when the evaluator is root, each concurrency slot runs its candidates as its
  own unprivileged uid, so every process of that uid belongs to that candidate, however it
  daemonized itself; :func:`kill_uid` sweeps ``/proc`` until none is left;
* ancestry: descendants still linked to the runner by parent pids (used when neither a uid nor
  a PID namespace is available).

All functions are synchronous and fast (one ``/proc`` scan per round), so they can run in a
``finally`` during task cancellation without awaiting anything.
"""

from __future__ import annotations

import contextlib
import os
import signal

_MAX_ROUNDS = 200


def _proc_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _status_fields(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return {}
    fields = {}
    for line in lines:
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def pids_of_uid(uid: int) -> list[int]:
    """Every live (non-zombie) process whose real or effective uid is ``uid``."""
    found = []
    for pid in _proc_pids():
        fields = _status_fields(pid)
        uids = fields.get("Uid", "").split()
        if not uids or fields.get("State", "").startswith("Z"):
            continue
        if str(uid) in uids[:2]:
            found.append(pid)
    return found


def kill_uid(uid: int) -> None:
    """SIGKILL every process of ``uid`` until none is left (a fork bomb loses the race)."""
    for _ in range(_MAX_ROUNDS):
        pids = pids_of_uid(uid)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def descendants(root: int) -> list[int]:
    """Pids whose parent chain leads to ``root`` (a snapshot of ``/proc``)."""
    children: dict[int, list[int]] = {}
    for pid in _proc_pids():
        ppid = _status_fields(pid).get("PPid")
        if ppid and ppid.isdigit():
            children.setdefault(int(ppid), []).append(pid)
    out: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            out.append(child)
            stack.append(child)
    return out


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (single-threaded parents, which runners and bwrap are)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        return []


def kill_tree(pid: int, follow_parents: bool) -> None:
    """SIGKILL the process group led by ``pid`` and, if asked, its linked descendants.

    ``pid``'s direct children die first: when ``pid`` is bubblewrap, its child is the PID
    namespace's init, and killing that first lets bubblewrap reap it, instead of leaving a
    zombie to a container init that may never reap.
    """
    for child in children(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(child, signal.SIGKILL)
    stragglers = descendants(pid) if follow_parents else []
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    for child in stragglers:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(child, signal.SIGKILL)
