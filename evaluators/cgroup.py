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


_V1_MEMORY = Path("/sys/fs/cgroup/memory")


def _own_v1_dir(controller: str) -> Path | None:
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, names, path = line.split(":", 2)
            if controller in names.split(","):
                return Path("/sys/fs/cgroup") / controller / path.lstrip("/")
    except (OSError, ValueError):
        return None
    return None


class MemoryCgroup:
    """A slot's memory cgroup: one limit for its whole sandbox (supervisor, candidate and
    every process, memfd, pipe and socket buffer the candidate makes), with no swap, and a
    count of the processes the kernel killed for exceeding it.

    Made where root can: cgroup v2 when this process's cgroup delegates the memory controller
    to its children, else cgroup v1's memory hierarchy. :meth:`create` returns None elsewhere.
    """

    def __init__(self, path: Path, v2: bool) -> None:
        self.path = path
        self.v2 = v2

    @classmethod
    def create(cls, name: str, limit_bytes: int) -> MemoryCgroup | None:
        if os.geteuid() != 0:
            return None
        own = _own_v2_dir()
        if own is not None and "memory" in _read(own / "cgroup.subtree_control").split():
            made = cls._make(own / name, True, limit_bytes)
            if made is not None:
                return made
        v1 = _own_v1_dir("memory")
        if v1 is not None and (v1 / "memory.limit_in_bytes").exists():
            return cls._make(v1 / name, False, limit_bytes)
        return None

    @classmethod
    def _make(cls, path: Path, v2: bool, limit_bytes: int) -> MemoryCgroup | None:
        try:
            path.mkdir(exist_ok=True)
            if v2:
                (path / "memory.max").write_text(str(limit_bytes))
                with contextlib.suppress(OSError):
                    (path / "memory.swap.max").write_text("0")
            else:
                (path / "memory.limit_in_bytes").write_text(str(limit_bytes))
                with contextlib.suppress(OSError):  # no swap accounting: swap is not counted
                    (path / "memory.memsw.limit_in_bytes").write_text(str(limit_bytes))
        except OSError:
            with contextlib.suppress(OSError):
                path.rmdir()
            return None
        return cls(path, v2)

    @property
    def procs_file(self) -> str:
        return str(self.path / "cgroup.procs")

    def oom_kills(self) -> int:
        """How many processes the kernel has killed in this cgroup for exceeding its limit."""
        text = _read(self.path / ("memory.events" if self.v2 else "memory.oom_control"))
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return 0

    def remove(self) -> None:
        """Kill what is left in it and remove it."""
        PidsCgroup(self.path).remove()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
