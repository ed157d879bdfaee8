"""Who holds a run, and whether that holder can still be alive: the standard library only, so
that the read-only commands can tell a live run from a dead one without loading SQLAlchemy."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a run: enough to tell a live holder from a dead one."""

    host: str
    pid: int
    started: str  # the process's start time on its host, against pid reuse
    token: str

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"


def process_start(pid: int) -> str:
    """The start time of ``pid`` (clock ticks since boot), or "" when it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


def this_holder() -> Holder:
    pid = os.getpid()
    return Holder(socket.gethostname(), pid, process_start(pid), secrets.token_hex(16))


def holder_alive(host: str, pid: int, started: str) -> bool:
    """Whether a holder may be alive: False only for a process of this host that is gone."""
    return host != socket.gethostname() or _alive_here(Holder(host, pid, started, ""))


def _alive_here(holder: Holder) -> bool:
    """Whether a holder on this host is still the same running process."""
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    return not holder.started or process_start(holder.pid) in ("", holder.started)
