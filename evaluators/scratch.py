"""A slot's scratch file system: everything a candidate can write, bounded in bytes and files.

Without it a candidate could fill the disk (1.5 GiB in 3 s) or exhaust its inodes (50,000
files), however small each file is. One bounded file system per slot holds the candidate's
working directory and, under bubblewrap, the sandbox's ``/tmp`` and ``/dev/shm``; the supervisor
empties it after every candidate (``child.py``). How it is made depends on the setup:

* ``host`` (evolve runs as root): a tmpfs mounted on the slot's directory on the host with
  ``size=`` and ``nr_inodes=``; bubblewrap binds its ``tmp`` folder as the sandbox's ``/tmp``
  (the working directory is ``/tmp/work``) and its ``shm`` folder as ``/dev/shm``; without
  bubblewrap the working directory lives in it. It is unmounted when the pool closes, and the
  mounts of a killed run are swept at the next start (:func:`sweep_mounts`).
* ``userns`` (unprivileged, where the kernel lets a user namespace mount a tmpfs): bubblewrap
  keeps CAP_SYS_ADMIN in its user namespace for the supervisor, which mounts one tmpfs with
  ``size=`` and ``nr_inodes=`` in a mount namespace of its own, binds its ``tmp`` folder as
  ``/tmp`` and its ``shm`` folder as ``/dev/shm`` (as for ``host``), then drops every capability
  for good before it serves (``child.own_scratch``). Should that mount fail, bubblewrap's own
  ``/tmp`` and ``/dev/shm`` stay: those of ``bwrap`` when it can size them, else unbounded ones.
* ``bwrap`` (unprivileged, bubblewrap >= 0.10, where ``userns`` cannot mount): bubblewrap makes
  the sandbox's ``/tmp`` (holding the working directory) and ``/dev/shm`` as two tmpfs of
  ``max_disk_mb`` each (``--size``); it cannot bound their file count, which is then bounded
  only by their size.
* ``none``: only each file's size is bounded (``max_file_mb``).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from evaluators.child import SCRATCH_ENV

#: Where the scratch file system appears inside bubblewrap (the working directory is in it).
SANDBOX_ROOT = Path("/tmp")
#: The folders of a host-mounted scratch file system bound as the sandbox's ``/tmp`` and
#: ``/dev/shm``.
TMP_DIR, SHM_DIR = "tmp", "shm"
#: Inodes beyond ``max_files`` for what the sandbox makes itself: the root, ``tmp`` and ``shm``,
#: the working directory, its ``tmp`` and the candidate's file, and bubblewrap's mount points.
INODE_SLACK = 16
_MS_NOSUID, _MS_NODEV = 2, 4
_MNT_DETACH = 2
#: bubblewrap's first release with ``--size`` for a tmpfs.
_SIZE_SINCE = (0, 10)


@dataclass(frozen=True)
class ScratchLimits:
    """How much a candidate may keep on its scratch file system at once."""

    max_bytes: int
    max_files: int


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def mount_tmpfs(path: Path, limits: ScratchLimits, mode: int) -> None:
    """Mount a tmpfs on ``path`` holding at most ``limits`` (root only).

    Raises:
        OSError: the mount was refused (no CAP_SYS_ADMIN, as in many containers).
    """
    options = f"size={limits.max_bytes},nr_inodes={limits.max_files + INODE_SLACK},mode={mode:o}"
    flags = _MS_NOSUID | _MS_NODEV
    if _libc().mount(b"tmpfs", os.fsencode(path), b"tmpfs", flags, options.encode()) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mounting a tmpfs on {path}: {os.strerror(errno)}")


def unmount(path: Path) -> bool:
    """Detach the mount on ``path`` (lazily: a sandbox still holding it keeps it until it
    ends); whether it was unmounted. Never raises."""
    return bool(_libc().umount2(os.fsencode(path), _MNT_DETACH) == 0)


def prepare_root(root: Path, for_bwrap: bool) -> None:
    """Shape a fresh scratch file system. Under bubblewrap it holds the sandbox's ``/tmp`` and
    ``/dev/shm`` (sticky and writable by all, as they are), inside a root that no one else on
    the host may enter; without, it holds only the working directory the supervisor makes."""
    if not for_bwrap:
        root.chmod(0o755)
        return
    root.chmod(0o700)
    for name in (TMP_DIR, SHM_DIR):
        (root / name).mkdir()
        (root / name).chmod(0o1777)


def mount_points() -> list[Path]:
    """Every mount point this process's mount namespace shows (``/proc/self/mountinfo``)."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    points = []
    for line in lines:
        fields = line.split(" ")
        if len(fields) > 4:
            points.append(Path(_unescape(fields[4])))
    return points


def _unescape(field: str) -> str:
    """mountinfo writes a space, tab, newline and backslash as ``\\ooo``."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def stale_mounts(parent: Path, alive: Callable[[int], bool]) -> list[Path]:
    """Scratch mounts in ``parent`` (slot directories, ``evolve-slotN-PID-*``) whose owning
    process no longer runs, by ``alive(pid)``: what an evolve killed with SIGKILL left."""
    stale = []
    for point in mount_points():
        if point.parent != parent or not point.name.startswith("evolve-slot"):
            continue
        owner = point.name.split("-")[2] if point.name.count("-") >= 3 else ""
        if owner.isdigit() and not alive(int(owner)):
            stale.append(point)
    return list(dict.fromkeys(stale))


def sweep_mounts(parent: Path, alive: Callable[[int], bool]) -> list[Path]:
    """Unmount the stale scratch mounts in ``parent`` (see :func:`stale_mounts`); a mount
    stacked twice is detached until none is left. Returns the unmounted mount points."""
    swept = []
    for point in stale_mounts(parent, alive):
        if unmount(point):
            swept.append(point)
            for _ in range(8):  # any mount stacked below it
                if not unmount(point):
                    break
    return swept


def parse_version(text: str) -> tuple[int, ...]:
    """``(0, 11, 0)`` from ``bubblewrap 0.11.0`` (``()`` when there is no version)."""
    found = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not found:
        return ()
    return tuple(int(g) for g in found.groups() if g is not None)


def sizes_tmpfs(version: tuple[int, ...]) -> bool:
    """Whether a bubblewrap of ``version`` can bound a tmpfs's size (``--size``)."""
    return bool(version) and version[:2] >= _SIZE_SINCE


@dataclass(frozen=True)
class Scratch:
    """A slot's scratch file system as the sandbox's argv needs it.

    Attributes:
        kind: ``"host"`` (mounted on the slot directory by root), ``"userns"`` (mounted by the
            supervisor in bubblewrap's user namespace), ``"bwrap"`` (made by bubblewrap) or
            ``"none"``.
        limits: its bounds (unused for ``"none"``).
        sized: for ``"userns"``, whether bubblewrap can size the tmpfs that stay should the
            supervisor's mount fail (``--size``).
    """

    kind: str
    limits: ScratchLimits
    sized: bool = False

    def bwrap_args(self, slot_dir: Path) -> list[str]:
        """bubblewrap's arguments for ``/tmp`` and ``/dev/shm`` (the working directory is in
        ``/tmp`` unless ``none``). For ``userns`` they add CAP_SYS_ADMIN, which the supervisor
        drops before it serves, and ask it for the scratch (:data:`SCRATCH_ENV`)."""
        if self.kind == "host":
            tmp, shm = slot_dir / TMP_DIR, slot_dir / SHM_DIR
            return ["--bind", str(tmp), str(SANDBOX_ROOT), "--bind", str(shm), "/dev/shm"]
        if self.kind == "userns":
            spec = f"{self.limits.max_bytes} {self.limits.max_files + INODE_SLACK}"
            fallback = Scratch("bwrap" if self.sized else "none", self.limits)
            return [
                "--cap-add", "CAP_SYS_ADMIN", "--setenv", SCRATCH_ENV, spec,
                *fallback.bwrap_args(slot_dir),
            ]  # fmt: skip
        if self.kind == "bwrap":
            size = str(self.limits.max_bytes)
            return [
                "--perms", "01777", "--size", size, "--tmpfs", str(SANDBOX_ROOT),
                "--perms", "01777", "--size", size, "--tmpfs", "/dev/shm",
            ]  # fmt: skip
        return ["--perms", "01777", "--tmpfs", "/tmp", "--perms", "01777", "--tmpfs", "/dev/shm"]

    def inside(self, slot_dir: Path, bwrap: bool) -> Path:
        """Where the slot's directory is seen by the supervisor and the candidate."""
        return SANDBOX_ROOT if bwrap and self.kind != "none" else slot_dir

    def gap(self, bwrap: bool) -> str:
        """What this scratch leaves unbounded, for the start-up warning ('' when nothing)."""
        if self.kind == "none":
            return (
                "the disk use of its working directory, /tmp and /dev/shm is bounded per file "
                "(max_file_mb), not in total (a bounded tmpfs needs root, a kernel that lets "
                "bubblewrap's user namespace mount one, or bubblewrap >= 0.10)"
            )
        if self.kind == "bwrap":
            return (
                "its file count (this kernel refused the sandbox's own tmpfs and bubblewrap "
                "cannot bound a tmpfs's inodes; /tmp and /dev/shm are bounded by max_disk_mb "
                "each)"
            )
        if not bwrap:
            return "/tmp and /dev/shm are the host's (only the working directory is bounded)"
        return ""


NO_SCRATCH = Scratch("none", ScratchLimits(0, 0))


def make_host_scratch(slot_dir: Path, limits: ScratchLimits, for_bwrap: bool) -> bool:
    """Mount and shape the scratch tmpfs on ``slot_dir``; whether that worked (only root may;
    a refusal leaves ``slot_dir`` as it was)."""
    try:
        mount_tmpfs(slot_dir, limits, 0o700)
    except OSError:
        return False
    try:
        prepare_root(slot_dir, for_bwrap)
    except OSError:
        with contextlib.suppress(OSError):
            unmount(slot_dir)
        return False
    return True
