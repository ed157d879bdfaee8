"""A pids cgroup per sandbox slot: a process limit root cannot escape, and a complete kill list.

Used when the machine lets us create cgroups (root with a writable pids controller, v1 or v2).
The runner joins its slot's cgroup before running the candidate, so every descendant is a
member whatever it does to its process group or parent; ``pids.max`` caps a fork bomb even for
root, and killing every pid in ``cgroup.procs`` until it is empty leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

_V1 = Path("/sys/fs/cgroup/pids")
_V2 = Path("/sys/fs/cgroup")
_MAX_ROUNDS = 200


def _own_v2_dir() -> Path | None:
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return _V2 / line[3:].lstrip("/")
    except OSError:
        return None
    return None


def pids_parent() -> Path | None:
    """A directory where slot cgroups with a ``pids.max`` can be created, or None."""
    if os.geteuid() != 0:
        return None
    candidates = []
    if (_V1 / "cgroup.procs").exists():
        candidates.append(_V1)
    own = _own_v2_dir()
    if own is not None and (_V2 / "cgroup.controllers").exists():
        candidates.append(own)
    for parent in candidates:
        probe = parent / f"evolve-probe-{os.getpid()}"
        try:
            probe.mkdir()
        except OSError:
            continue
        try:
            if (probe / "pids.max").exists():
                return parent
        finally:
            with contextlib.suppress(OSError):
                probe.rmdir()
    return None


class PidsCgroup:
    """One slot's cgroup: created with a pids limit, emptied by :meth:`kill_all`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, parent: Path, name: str, max_pids: int) -> PidsCgroup:
        path = parent / name
        path.mkdir(exist_ok=True)
        (path / "pids.max").write_text(str(max_pids))
        return cls(path)

    @property
    def procs_file(self) -> str:
        return str(self.path / "cgroup.procs")

    def pids(self) -> list[int]:
        try:
            return [int(x) for x in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def kill_all(self) -> None:
        """SIGKILL every member until none is left."""
        for _ in range(_MAX_ROUNDS):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        self.kill_all()
        with contextlib.suppress(OSError):
            self.path.rmdir()
