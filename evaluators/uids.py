"""Lease unprivileged uids for sandbox slots, one per concurrency slot, machine-wide.

When the evaluator runs as root, each slot runs its candidates as its own uid: root ignores
``RLIMIT_NPROC``, an unprivileged uid does not, and "every process of this uid" is then exactly
"everything this candidate started", however it daemonized itself. Two evaluators on one machine
must never share a uid (each would kill the other's candidates), so a uid is leased with an
exclusive ``flock`` on a lock file; the kernel releases it when the process dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

#: First uid tried; far above login users and systemd's dynamic range (61184-65519).
UID_BASE = 200_000
_UID_SPAN = 4096
_LOCK_DIR = Path("/tmp/evolve-sandbox-uids")


def _mapped(uid: int) -> bool:
    """True when ``uid`` exists in this process's user namespace (containers may map few)."""
    try:
        lines = Path("/proc/self/uid_map").read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        inside, _outside, count = (int(x) for x in line.split())
        if inside <= uid < inside + count:
            return True
    return False


class UidLease:
    """Up to ``count`` distinct uids held until :meth:`release` (or process exit)."""

    def __init__(self) -> None:
        self._fds: dict[int, int] = {}

    @property
    def uids(self) -> list[int]:
        return sorted(self._fds)

    def acquire(self, count: int) -> list[int]:
        """Lease ``count`` uids; returns fewer (possibly none) when not root or none is free."""
        if os.geteuid() != 0:
            return []
        _LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
        uid = UID_BASE
        while len(self._fds) < count and uid < UID_BASE + _UID_SPAN:
            if uid not in self._fds and _mapped(uid):
                fd = os.open(_LOCK_DIR / f"{uid}.lock", os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                else:
                    self._fds[uid] = fd
            uid += 1
        return self.uids

    def release(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()
