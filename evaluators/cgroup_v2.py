"""A cgroup v2 subtree that evolve may manage: where each slot gets one cgroup holding its
memory, pids and CPU limits together, as root or as an ordinary user the subtree is delegated to.

cgroup v2 lets a process make child cgroups wherever it can write, and enable the controllers
its cgroup was given (``cgroup.controllers``) for them (``cgroup.subtree_control``). Two rules
shape how: a cgroup other than the hierarchy's root cannot both hold processes and hand
domain controllers such as memory to its children (enabling one fails with EBUSY; with EOPNOTSUPP
once a threaded controller such as cpu or pids was enabled there first, which turns a cgroup
holding processes into a thread root), and moving a process needs write
access to the ``cgroup.procs`` of the common ancestor. So evolve takes its own cgroup: where
the controllers cannot be enabled there because processes live in it (evolve's own, a
container's, a shell's), every process in it is moved into a leaf child (:data:`LEAF`) first,
then the controllers are enabled and the slots' cgroups made beside that leaf. This is what
systemd means by delegation (``Delegate=yes``): for an ordinary user, ``systemd-run --user
--scope -p Delegate=yes evolve run ...`` gives evolve such a subtree; as root the process's
own cgroup is writable anyway (a container's root cgroup, a login session's scope).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: The controllers a slot's limits need: ``memory.max``, ``pids.max``, ``cpu.max``.
WANTED = ("memory", "pids", "cpu")
#: The leaf child that the processes of evolve's cgroup move into, so it can hand controllers
#: to the slots' cgroups. A later evolve started from one of those processes (a shell) finds
#: itself there and makes its slots beside it.
LEAF = "evolve-main"
#: How many passes moving the processes out may take (some may fork meanwhile).
_MOVE_ROUNDS = 20
#: Controllers that may be enabled where processes live (the kernel's threaded controllers);
#: the others are enabled first, so that a cgroup holding processes is refused at once.
_THREADED = frozenset({"cpu", "cpuset", "perf_event", "pids"})
#: What the kernel answers when processes live where a domain controller is enabled: EBUSY,
#: or EOPNOTSUPP in a thread root (processes, and a threaded controller enabled already).
_PROCESSES_HERE = (errno.EBUSY, errno.EOPNOTSUPP)


@dataclass(frozen=True)
class V2Parent:
    """A cgroup v2 directory in which slot cgroups can be made, with the controllers they get."""

    path: Path
    controllers: frozenset[str]

    def make(self, name: str) -> Path | None:
        """A child cgroup ``name`` (made, or reused from an earlier attempt); None if refused."""
        path = self.path / name
        try:
            path.mkdir(exist_ok=True)
        except OSError:
            return None
        return path


def cgroup2_mount(mountinfo: str) -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (``/sys/fs/cgroup``; ``/sys/fs/cgroup/unified``
    on a hybrid machine), from ``/proc/self/mountinfo``; None without one."""
    for line in mountinfo.splitlines():
        fields, _, rest = line.partition(" - ")
        parts = fields.split()
        if rest.split()[:1] == ["cgroup2"] and len(parts) > 4 and parts[3] == "/":
            return Path(parts[4].replace("\\040", " "))
    return None


def own_v2_dir() -> Path | None:
    """This process's cgroup v2 directory, or None (no v2 hierarchy mounted)."""
    try:
        mount = cgroup2_mount(Path("/proc/self/mountinfo").read_text())
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    own = next((line[3:] for line in lines if line.startswith("0::")), None)
    if mount is None or own is None or own.endswith(" (deleted)"):
        return None
    return mount / own.lstrip("/")


def delegated_v2(own: Path | None = None, wanted: Iterable[str] = WANTED) -> V2Parent | None:
    """The directory where this process can make slot cgroups with as many of ``wanted``
    controllers as its cgroup (``own``, default its own) was given, enabling them there when
    needed (see the module's docstring); None where none can be had (no v2 hierarchy, none
    of the controllers delegated, nothing writable)."""
    own = own or own_v2_dir()
    if own is None:
        return None
    wanted = set(wanted)
    if own.name == LEAF and _words(own.parent, "cgroup.subtree_control") & wanted:
        own = own.parent  # an earlier evolve's leaf: its siblings get the controllers
    available = _words(own, "cgroup.controllers") & wanted
    if not available or not os.access(own, os.W_OK | os.X_OK):
        return None
    missing = available - _words(own, "cgroup.subtree_control")
    if missing and not _enable(own, missing):
        _move_processes(own, own / LEAF)
        _enable(own, missing)
    enabled = _words(own, "cgroup.subtree_control") & available
    return V2Parent(own, frozenset(enabled)) if enabled else None


def _words(directory: Path, name: str) -> set[str]:
    """The words of a cgroup file (controllers, pids); empty if unreadable."""
    try:
        return set((directory / name).read_text().split())
    except OSError:
        return set()


def _enable(directory: Path, controllers: set[str]) -> bool:
    """Enable ``controllers`` for the children of ``directory``, domain controllers first;
    False when the kernel refuses because processes live in it (:data:`_PROCESSES_HERE`), True
    otherwise (each it refuses for another reason is left off)."""
    for name in sorted(controllers, key=lambda name: (name in _THREADED, name)):
        try:
            (directory / "cgroup.subtree_control").write_text(f"+{name}")
        except OSError as exc:
            if exc.errno in _PROCESSES_HERE:
                return False
    return True


def _move_processes(source: Path, leaf: Path) -> None:
    """Move every process of ``source`` into its child ``leaf`` (made if needed); those the
    kernel will not move (kernel threads, processes that just exited) stay."""
    try:
        leaf.mkdir(exist_ok=True)
    except OSError:
        return
    for _ in range(_MOVE_ROUNDS):
        pids = _words(source, "cgroup.procs")
        moved = False
        for pid in pids:
            with contextlib.suppress(OSError):
                (leaf / "cgroup.procs").write_text(pid)
                moved = True
        if not moved:
            return
