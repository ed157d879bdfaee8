"""Cgroups per sandbox slot: limits that hold for a candidate's whole process tree.

Used where the machine lets us create cgroups: cgroup v1 hierarchies as root (made here), a
cgroup v2 subtree as root or where it is delegated (the directory is made by
:mod:`evaluators.cgroup_v2`; the classes here set its limits and read it). A pids
cgroup: the runner joins its slot's before running the candidate, so every descendant is a
member whatever it does to its process group or parent; ``pids.max`` caps a fork bomb even for
root, and killing every pid in ``cgroup.procs`` until it is empty leaves nothing behind. A memory
cgroup and a CPU cgroup hold the slot's whole sandbox (see :class:`MemoryCgroup` and
:class:`CpuCgroup`).
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

_V1 = Path("/sys/fs/cgroup/pids")
_MAX_ROUNDS = 200


def pids_parent() -> Path | None:
    """The cgroup v1 ``pids`` hierarchy's directory, where root can create slot cgroups with
    a ``pids.max``, or None (cgroup v2's are made by :mod:`evaluators.cgroup_v2`)."""
    if os.geteuid() != 0 or not (_V1 / "cgroup.procs").exists():
        return None
    probe = _V1 / f"evolve-probe-{os.getpid()}"
    try:
        probe.mkdir()
    except OSError:
        return None
    try:
        return _V1 if (probe / "pids.max").exists() else None
    finally:
        with contextlib.suppress(OSError):
            probe.rmdir()


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

    def remove(self) -> bool:
        """Kill every member and remove the directory; whether it is gone (the kernel refuses
        while a killed member is still exiting)."""
        self.kill_all()
        with contextlib.suppress(OSError):
            self.path.rmdir()
        return not self.path.exists()


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

    Made in a slot's cgroup v2 directory (:meth:`in_v2`, where the memory controller is
    delegated: :mod:`evaluators.cgroup_v2`), else where root can in cgroup v1's memory
    hierarchy (:meth:`create`, None elsewhere).
    """

    def __init__(self, path: Path, v2: bool) -> None:
        self.path = path
        self.v2 = v2

    @classmethod
    def create(cls, name: str, limit_bytes: int) -> MemoryCgroup | None:
        """A v1 cgroup ``name`` next to this process's own, limited to ``limit_bytes``."""
        if os.geteuid() != 0:
            return None
        v1 = _own_v1_dir("memory")
        if v1 is not None and (v1 / "memory.limit_in_bytes").exists():
            return cls._in_v1(v1 / name, limit_bytes)
        return None

    @classmethod
    def in_v2(cls, directory: Path, limit_bytes: int) -> MemoryCgroup | None:
        """Limit the existing v2 cgroup ``directory`` (``memory.max``, no swap); None if refused."""
        try:
            (directory / "memory.max").write_text(str(limit_bytes))
        except OSError:
            return None
        with contextlib.suppress(OSError):
            (directory / "memory.swap.max").write_text("0")
        return cls(directory, True)

    @classmethod
    def _in_v1(cls, path: Path, limit_bytes: int) -> MemoryCgroup | None:
        try:
            path.mkdir(exist_ok=True)
            (path / "memory.limit_in_bytes").write_text(str(limit_bytes))
            with contextlib.suppress(OSError):  # no swap accounting: swap is not counted
                (path / "memory.memsw.limit_in_bytes").write_text(str(limit_bytes))
        except OSError:
            with contextlib.suppress(OSError):
                path.rmdir()
            return None
        return cls(path, False)

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

    def remove(self) -> bool:
        """Kill what is left in it and remove it; whether it is gone."""
        return PidsCgroup(self.path).remove()


#: The CFS period the CPU rate cap is expressed in (the kernel's default), in microseconds.
CFS_PERIOD_US = 100_000
#: The smallest quota the kernel accepts per period, in microseconds.
_MIN_QUOTA_US = 1_000


class CpuCgroup:
    """A slot's CPU cgroup: a rate cap of ``cores`` for its whole sandbox, and the CPU time
    every process in it has used together (:meth:`usage_s`), which the launcher measures a
    candidate's CPU-time limit against.

    Made in the slot's cgroup v2 directory (:meth:`in_v2`: the one its memory and pids limits
    live in, a process being in one v2 cgroup only) where the cpu controller is delegated to
    it, else where root can in cgroup v1's ``cpu`` and ``cpuacct`` hierarchies (:meth:`create`:
    one directory each, or one shared when they are mounted together). ``cores`` is None
    when the cap could not be set (a parent's lower quota, under v1): the parent's quota then
    holds and the CPU time is still measured.
    """

    def __init__(self, paths: tuple[Path, ...], usage_file: Path, v2: bool, cores: float | None) -> None:
        self.paths = paths  # every directory the sandbox joins (v1: cpu and cpuacct)
        self.usage_file = usage_file
        self.v2 = v2
        self.cores = cores

    @classmethod
    def create(cls, name: str, cores: float) -> CpuCgroup | None:
        """The slot's v1 CPU cgroup, capped at ``cores``: directories called ``name`` next to
        this process's own; None where root cannot make them."""
        if os.geteuid() != 0:
            return None
        cpu, acct = _own_v1_dir("cpu"), _own_v1_dir("cpuacct")
        if cpu is None or acct is None:
            return None
        if not (cpu / "cpu.cfs_quota_us").exists() or not (acct / "cpuacct.usage").exists():
            return None
        return cls.in_v1(cpu / name, acct / name, cores)

    @classmethod
    def in_v2(cls, directory: Path, cores: float) -> CpuCgroup | None:
        """Cap the existing v2 cgroup ``directory`` (its ``cpu.max``); None if refused."""
        try:
            (directory / "cpu.max").write_text(f"{quota_us(cores)} {CFS_PERIOD_US}")
        except OSError:
            return None
        return cls((directory,), directory / "cpu.stat", True, cores)

    @classmethod
    def in_v1(cls, cpu_dir: Path, acct_dir: Path, cores: float) -> CpuCgroup | None:
        """Make ``cpu_dir`` (capped) and ``acct_dir`` (measured; may be the same directory
        through a symlink); None, with nothing left behind, if either cannot be made."""
        made: list[Path] = []
        try:
            for path in (cpu_dir, acct_dir):
                if not path.exists():
                    path.mkdir()
                    made.append(path)
        except OSError:
            for path in made:
                with contextlib.suppress(OSError):
                    path.rmdir()
            return None
        capped: float | None = cores
        try:
            (cpu_dir / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
            (cpu_dir / "cpu.cfs_quota_us").write_text(str(quota_us(cores)))
        except OSError:  # v1 refuses a quota above a parent's: the parent's then holds
            capped = None
        paths = (cpu_dir,) if cpu_dir.resolve() == acct_dir.resolve() else (cpu_dir, acct_dir)
        return cls(paths, acct_dir / "cpuacct.usage", False, capped)

    @property
    def procs_files(self) -> tuple[str, ...]:
        return tuple(str(path / "cgroup.procs") for path in self.paths)

    def usage_s(self) -> float:
        """CPU seconds every process that was ever in the cgroup has used (0.0 if unreadable)."""
        return parse_usage(_read(self.usage_file), self.v2)

    def remove(self) -> bool:
        """Kill what is left in it and remove its directories; whether they are gone."""
        return all([PidsCgroup(path).remove() for path in self.paths])


def quota_us(cores: float) -> int:
    """The CFS quota per :data:`CFS_PERIOD_US` that lets ``cores`` cores run."""
    return max(_MIN_QUOTA_US, round(cores * CFS_PERIOD_US))


def parse_usage(text: str, v2: bool) -> float:
    """CPU seconds from v2's ``cpu.stat`` (``usage_usec``) or v1's ``cpuacct.usage`` (ns)."""
    if not v2:
        value = text.strip()
        return int(value) / 1e9 if value.isdigit() else 0.0
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec" and value.strip().isdigit():
            return int(value) / 1e6
    return 0.0


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
