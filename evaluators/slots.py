"""Sandbox slots: one per concurrent evaluation, each with its own directory, uid and launcher.

A slot bundles what one running candidate needs exclusively: a directory that its working
directories live in (a bounded scratch file system where this machine allows one, see
:mod:`evaluators.scratch`), a sandbox uid when the evaluator is root, pids, memory and CPU
cgroups when the machine allows them, and a launcher (a warm template or cold spawns).
:class:`SlotPool` sets them up on first use, hands them out one evaluation at a time and tears
everything down in :meth:`SlotPool.aclose`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import shlex
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from evaluators.cgroup import CpuCgroup, MemoryCgroup, PidsCgroup, pids_parent
from evaluators.cgroup_v2 import V2Parent, delegated_v2
from evaluators.child import PR_SET_DUMPABLE, prctl, remove_tree
from evaluators.cold import ColdLauncher
from evaluators.cpu_budget import CpuMeter
from evaluators.environment import candidate_env
from evaluators.isolation import (
    RUNNER_DIR,
    UNCONFINED,
    Isolation,
    SandboxUnavailable,
    advice,
    detect,
)
from evaluators.reaper import kill_uid
from evaluators.sandbox import Confinement, Launcher, RunSpec, run_candidate
from evaluators.scratch import (
    NO_SCRATCH,
    Scratch,
    ScratchLimits,
    make_host_scratch,
    sweep_mounts,
    unmount,
)
from evaluators.uids import UidLease
from evaluators.warm import WarmTemplate
from evolve.records import Status

logger = logging.getLogger(__name__)

#: Processes a slot's cgroup allows beyond the problem's own limit (runner, helpers).
_CGROUP_SLACK = 4
#: Memory a slot's cgroup allows beyond the problem's limit: the supervisor and bubblewrap.
_SUPERVISOR_MB = 256
#: How many times (10 ms apart) removing a slot's cgroup is retried at the end.
_REMOVE_TRIES = 50
#: The child of a slot's cgroup v2 directory that a candidate without bubblewrap runs in: a kill
#: at a limit empties it without killing the supervisor beside it in the slot's directory, whose
#: limits hold for both (no controller is enabled for the child, so it may sit beside them).
_CANDIDATE = "candidate"


def deny_same_user_access() -> bool:
    """Make this process non-dumpable: processes of the same uid (candidates that run as the
    host's user, with neither bubblewrap nor a sandbox uid) can then no longer read its
    ``/proc/PID/environ`` (API keys) or memory, nor ptrace it. Core dumps and same-user
    debuggers (py-spy) are refused too, and this process can no longer list its own
    ``/proc/self/fd`` or read its own ``environ``; root's tools are not refused. Whether it
    took effect."""
    try:
        prctl(PR_SET_DUMPABLE, 0)
    except (OSError, AttributeError):  # no libc prctl (not Linux)
        return False
    return True


@dataclass
class Slot:
    """What one concurrent evaluation owns while it runs."""

    index: int
    directory: Path
    env: dict[str, str] = field(default_factory=dict)  # the candidates' environment
    uid: int | None = None
    cgroup: PidsCgroup | None = None
    memory: MemoryCgroup | None = None  # the whole sandbox's memory limit, where root can set one
    cpu: CpuCgroup | None = None  # the whole sandbox's CPU cap and count, where root can set one
    v2: Path | None = None  # the slot's cgroup v2 directory, which the whole sandbox joins
    launcher: Launcher | None = None
    templates: list[WarmTemplate] = field(default_factory=list)
    scratch: Scratch = NO_SCRATCH
    inside: Path | None = None  # the directory as the sandbox sees it (None: the same path)

    @property
    def workdir(self) -> Path:
        """Where each candidate runs: made afresh by the launcher, inside the slot's directory
        (as the sandbox sees it)."""
        return (self.inside or self.directory) / "work"

    @property
    def confinement(self) -> Confinement:
        return Confinement(self.uid, self.cgroup.procs_file if self.cgroup else None)

    def kill_cgroup(self) -> None:
        """Kill everything in the slot's pids cgroup, if it has one (cheap; never raises)."""
        if self.cgroup is not None:
            self.cgroup.kill_all()

    def oom_kills(self) -> int:
        """Processes the kernel killed so far in the slot's memory cgroup (0 without one)."""
        return self.memory.oom_kills() if self.memory is not None else 0

    def cpu_meter(self) -> CpuMeter | None:
        """How a launcher reads this slot's CPU time (None without a CPU cgroup): at most its
        cap, or the machine's cores, run at once."""
        if self.cpu is None:
            return None
        cores = float(os.cpu_count() or 1)
        rate = min(self.cpu.cores, cores) if self.cpu.cores is not None else cores
        return CpuMeter(self.cpu.usage_s, rate)

    def sandbox_cgroups(self) -> list[str]:
        """The ``cgroup.procs`` files the whole sandbox (supervisor and candidate) starts in."""
        files = [str(self.v2 / "cgroup.procs")] if self.v2 is not None else []
        if self.memory is not None:
            files.append(self.memory.procs_file)
        if self.cpu is not None:
            files += self.cpu.procs_files
        return list(dict.fromkeys(files))

    def sweep(self) -> None:
        """Kill everything of this slot, however it escaped: its cgroup and every process of
        its uid (a ``/proc`` scan, a few ms). Synchronous and never raises."""
        self.kill_cgroup()
        if self.uid is not None:
            kill_uid(self.uid)


@dataclass(frozen=True)
class PoolSettings:
    """How the slots are built."""

    size: int
    python: str
    isolation: str  # "auto" | "bwrap" | "process" | "unsafe-unconfined"
    warm: bool
    imports: tuple[str, ...]
    passthrough: tuple[str, ...]
    hidden: tuple[Path, ...]  # host paths the candidate must not see (the problem folder)
    max_processes: int
    bwrap: str | None = None  # the bubblewrap executable; None: the system's, else the bundled
    memory_mb: int = 0  # the problem's memory limit, applied per slot too where root can
    cpu_cores: float = 1.0  # the cores a slot's candidate may use at once, where root can cap it
    disk_mb: int = 0  # the scratch file system's size (0: per-file limits only)
    max_files: int = 0  # and its file count, where it can be bounded


class SlotPool:
    """Hand out slots; set them up lazily on the first :meth:`acquire`."""

    def __init__(self, settings: PoolSettings) -> None:
        self._settings = settings
        self._queue: asyncio.Queue[Slot] | None = None
        self._slots: list[Slot] = []
        self._lease = UidLease()
        self._lock: asyncio.Lock | None = None
        self.isolation: Isolation | None = None

    @property
    def candidate_uid(self) -> int | None:
        """The first slot's sandbox uid (all slots have one or none), once started."""
        return self._slots[0].uid if self._slots else None

    async def acquire(self) -> Slot:
        if self._queue is None:
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                if self._queue is None:
                    await self._start()
        assert self._queue is not None
        return await self._queue.get()

    def release(self, slot: Slot) -> None:
        """Return a slot (a no-op once the pool is closed)."""
        if self._queue is not None and slot in self._slots:
            self._queue.put_nowait(slot)

    async def _start(self) -> None:
        try:
            await self._make_slots()
        except BaseException:
            await self.aclose()
            raise

    async def _make_slots(self) -> None:
        s = self._settings
        self.isolation = await detect(s.isolation, s.python, s.bwrap)
        uids = self._lease.acquire(s.size)
        parent = pids_parent() if self.isolation.kind != "bwrap" else None
        v2 = delegated_v2()
        swept = sweep_stale([p for p in (parent, v2.path if v2 else None) if p is not None])
        if swept:
            logger.info("removed %d slot folders and cgroups of ended runs", len(swept))
        slots: list[Slot] = []
        self._slots = slots  # closed by aclose even if making a later one fails
        for i in range(s.size):
            directory = _make_slot_dir(i)
            slot = Slot(i, directory, uid=uids[i] if i < len(uids) else None)
            slot.scratch = self._scratch_for(directory)
            bwrap = self.isolation.kind == "bwrap"
            slot.inside = slot.scratch.inside(directory, bwrap)
            slot.env = candidate_env(slot.workdir, s.passthrough, os.environ)
            name = f"evolve-{os.getpid()}-{id(self):x}-{i}"
            self._cgroups_for(slot, name, parent, v2)
            slots.append(slot)
        if slots[0].memory is not None and not slots[0].memory.v2:  # v2's parent: swept above
            sweep_stale([slots[0].memory.path.parent])
        if slots[0].cpu is not None and not slots[0].cpu.v2:
            sweep_stale([path.parent for path in slots[0].cpu.paths])
        self._slots = slots
        uid_problem = "" if uids else _no_uid()
        if uids:
            uid_problem = await self._uid_problem(slots[0])
            if uid_problem:
                for slot in slots:
                    slot.uid = None
        refusal = refusal_reason(self.isolation, os.geteuid() == 0, uid_problem)
        if refusal:
            raise SandboxUnavailable(f"refusing to evaluate: {refusal}; {advice()}")
        for slot in slots:
            slot.launcher = self._launcher(slot)
        self._warn_if_unconfined(slots[0])
        self._shield_if_exposed(slots[0])
        self._warn_about_gaps(slots[0])
        self._queue = asyncio.Queue()
        for slot in slots:
            self._queue.put_nowait(slot)

    def _cgroups_for(self, slot: Slot, name: str, v1_pids: Path | None, v2: V2Parent | None) -> None:
        """Give ``slot`` its memory, pids and CPU cgroups: each in one cgroup v2 directory of
        the slot's where that controller is delegated (``v2``), else in cgroup v1 where root
        can make it (``v1_pids``: the pids hierarchy, when the slot needs one)."""
        s = self._settings
        directory = v2.make(name) if v2 is not None else None
        has = v2.controllers if v2 is not None and directory is not None else frozenset()
        slot.v2 = directory
        if s.memory_mb:
            # a scratch tmpfs is memory, charged to the cgroup of whoever writes it: room for
            # it, so that filling it is a full disk (ENOSPC), not a memory kill
            scratch_mb = s.disk_mb if slot.scratch.kind in ("host", "userns") else 0
            limit = (s.memory_mb + _SUPERVISOR_MB + scratch_mb) * 2**20
            if directory is not None and "memory" in has:
                slot.memory = MemoryCgroup.in_v2(directory, limit)
            else:
                slot.memory = MemoryCgroup.create(f"{name}-memory", limit)
        max_pids = str(s.max_processes + _CGROUP_SLACK)
        if directory is not None and "pids" in has:
            with contextlib.suppress(OSError):
                # the whole sandbox is in it, under bubblewrap too
                (directory / "pids.max").write_text(max_pids)
                if self.isolation is not None and self.isolation.kind != "bwrap":
                    (directory / _CANDIDATE).mkdir(exist_ok=True)
                    slot.cgroup = PidsCgroup(directory / _CANDIDATE)
        elif v1_pids is not None:
            slot.cgroup = PidsCgroup.create(v1_pids, name, int(max_pids))
        if directory is not None and "cpu" in has:
            slot.cpu = CpuCgroup.in_v2(directory, s.cpu_cores)
        else:
            slot.cpu = CpuCgroup.create(f"{name}-cpu", s.cpu_cores)

    def _scratch_for(self, directory: Path) -> Scratch:
        """The slot's bounded scratch file system: a tmpfs that root mounts on its directory,
        else one that the supervisor mounts in bubblewrap's user namespace, else the two that
        bubblewrap makes, else none (per-file limits only)."""
        s = self._settings
        assert self.isolation is not None
        if not s.disk_mb:
            return NO_SCRATCH
        limits = ScratchLimits(s.disk_mb * 2**20, s.max_files)
        bwrap = self.isolation.kind == "bwrap"
        if os.geteuid() == 0 and make_host_scratch(directory, limits, for_bwrap=bwrap):
            return Scratch("host", limits)
        if bwrap and self.isolation.own_scratch:
            return Scratch("userns", limits, sized=self.isolation.sized_tmpfs)
        if bwrap and self.isolation.sized_tmpfs:
            return Scratch("bwrap", limits)
        return NO_SCRATCH

    def _launcher(self, slot: Slot) -> Launcher:
        s = self._settings
        assert self.isolation is not None
        prefix = self.isolation.prefix(slot.directory, s.hidden, slot.scratch)
        prefix = joining(slot.sandbox_cgroups(), prefix)
        # Under bubblewrap the PID namespace dies with the supervisor; without it, only the
        # uid sweep finds descendants that escaped it.
        sweep_uid = self.isolation.kind != "bwrap"
        # The supervisor gets the candidates' environment (it passes on nothing else).
        args = (s.python, prefix, slot.directory, slot.workdir, slot.env)
        if not s.warm:
            return ColdLauncher(
                *args,
                slot.kill_cgroup,
                slot.sweep if sweep_uid else slot.kill_cgroup,
                slot.cpu_meter(),
            )
        template = WarmTemplate(*args, s.imports, slot.kill_cgroup, slot.sweep, slot.cpu_meter())
        slot.templates.append(template)
        return template

    async def _uid_problem(self, slot: Slot) -> str:
        """Run a probe candidate as the sandbox uid: can it import what candidates import?
        What went wrong ('' when it can)."""
        s = self._settings
        assert self.isolation is not None
        prefix = self.isolation.prefix(slot.directory, s.hidden, slot.scratch)
        env = candidate_env(slot.workdir, (), {})
        launcher = ColdLauncher(
            s.python, prefix, slot.directory, slot.workdir, env, slot.kill_cgroup, slot.sweep
        )
        # Only modules this interpreter can find: a missing problem import must not be
        # mistaken for an unreadable installation (both surface as ModuleNotFoundError).
        modules = ["subprocess", "email.parser", "decimal", *filter(_findable, s.imports)]
        code = f"import {', '.join(modules)}\ndef run():\n    return 1\n"
        outcome = await run_candidate(
            launcher, code, RunSpec("run", timeout_s=30), env, slot.confinement
        )
        if outcome.status is Status.EVALUATED:
            return ""
        detail = outcome.message.splitlines()[-1] if outcome.message else str(outcome.status)
        return (
            f"the sandbox uid cannot run the interpreter {s.python} ({detail}); an interpreter "
            "every user can read (evaluator.python) would do"
        )

    def _warn_if_unconfined(self, slot: Slot) -> None:
        assert self.isolation is not None
        if self.isolation.kind == "unconfined":
            who = f"sandbox uid {slot.uid}" if slot.uid is not None else _user_name()
            logger.warning(
                "evaluator.isolation=%s: candidates run UNCONFINED as %s, with evolve's "
                "network and file system%s",
                UNCONFINED,
                who,
                ""
                if slot.uid is not None
                else ": they can read evolve's environment (API keys), trace and kill it, and "
                "write wherever it can",
            )

    def _shield_if_exposed(self, slot: Slot) -> None:
        """Candidates that run as this process's own user with no namespaces could read its
        environment and memory: make it non-dumpable, and say what stays exposed. (Root
        candidates are warned about when the sandbox uid is probed; nothing shields from them.)"""
        assert self.isolation is not None
        if self.isolation.kind != "bwrap" and slot.uid is None and os.geteuid() != 0:
            shielded = deny_same_user_access()
            logger.warning(
                "candidates run as your own user without bubblewrap: they can read the "
                "environment of your other processes (a shell that exported an API key) and "
                "write wherever you can%s; install bubblewrap (apt-get install bubblewrap) to "
                "confine them",
                " (this process is shielded: not dumpable)" if shielded else "",
            )

    def _warn_about_gaps(self, slot: Slot) -> None:
        """Say, in one warning, which limits hold per process rather than per candidate here."""
        assert self.isolation is not None
        gaps = []
        disk = slot.scratch.gap(self.isolation.kind == "bwrap")
        if disk:
            gaps.append(disk)
        if slot.memory is None:
            gaps.append("memory_mb holds per process, for want of a memory cgroup per slot")
        if slot.cpu is None:
            gaps.append(
                "the CPU-time limit holds per process (a candidate's children each get their "
                "own) and cpu_cores is not applied, for want of a CPU cgroup per slot"
            )
        elif slot.cpu.cores is None:
            gaps.append("cpu_cores is not applied (a parent cgroup's CPU quota is lower)")
        unprivileged_bwrap = self.isolation.kind == "bwrap" and os.geteuid() != 0
        if slot.uid is None and slot.cgroup is None and not unprivileged_bwrap:
            gaps.append(
                "with neither a sandbox uid nor a pids cgroup, a fork bomb is limited only by "
                "the wall-time limit"
            )
        if (slot.memory is None or slot.cpu is None) and os.geteuid() != 0:
            gaps.append(
                "a cgroup v2 delegated to you gives both "
                "(systemd-run --user --scope -p Delegate=yes evolve ...)"
            )
        if gaps:
            logger.warning("not bounded per candidate on this machine: %s", "; ".join(gaps))

    async def aclose(self) -> None:
        """Stop templates, kill what is left in every slot, remove directories and cgroups."""
        cgroups: list[PidsCgroup | MemoryCgroup | CpuCgroup] = []
        for slot in self._slots:
            for template in slot.templates:
                await template.aclose()
            slot.sweep()
            cgroups += [c for c in (slot.cgroup, slot.memory, slot.cpu) if c is not None]
            if slot.v2 is not None:  # made even where none of them could use it
                cgroups.append(PidsCgroup(slot.v2))
            slot.cgroup = slot.memory = slot.cpu = None
            slot.v2 = None
            if slot.scratch.kind == "host":
                unmount(slot.directory)
            shutil.rmtree(slot.directory, ignore_errors=True)
        await _remove_cgroups(cgroups)
        self._slots = []
        self._queue = None
        self._lease.release()


async def _remove_cgroups(cgroups: Sequence[PidsCgroup | MemoryCgroup | CpuCgroup]) -> None:
    """Kill what is left in ``cgroups`` and remove them. The kernel refuses to remove a cgroup
    (EBUSY) until the processes just killed in it have fully exited: retry for a moment."""
    unique = {(c.paths if isinstance(c, CpuCgroup) else (c.path,)): c for c in cgroups}
    pending = [c for c in unique.values() if not c.remove()]
    for _ in range(_REMOVE_TRIES):
        if not pending:
            return
        await asyncio.sleep(0.01)
        pending = [c for c in pending if not c.remove()]


def joining(procs_files: Sequence[str], argv: list[str]) -> list[str]:
    """``argv`` started inside the cgroups whose ``cgroup.procs`` files are given: a shell
    writes its own pid to each, then becomes ``argv`` (so every process it starts is in them)."""
    if not procs_files:
        return argv
    writes = " && ".join(f"echo $$ > {shlex.quote(path)}" for path in procs_files)
    return ["/bin/sh", "-c", f'{writes} && exec "$@"', "evolve-sandbox", *argv]


def refusal_reason(isolation: Isolation, root: bool, uid_problem: str) -> str:
    """Why candidates may not run under ``isolation`` ('' when they may).

    They may when something keeps them away from evolve: bubblewrap (a user namespace when not
    root; a sandbox uid when root, since root inside bubblewrap keeps its capabilities), a sandbox
    uid without bubblewrap, or the explicit unconfined opt-in.
    """
    if isolation.kind == "unconfined":
        return ""
    if isolation.kind == "bwrap":
        if not root or not uid_problem:
            return ""
        return f"candidates would run as root inside bubblewrap: {uid_problem}"
    if not uid_problem:
        return ""
    return f"{isolation.reason}; {uid_problem}"


def _no_uid() -> str:
    if os.geteuid() != 0:
        return "candidates can run as a sandbox uid only when evolve runs as root"
    return "no sandbox uid is free or mapped in this user namespace"


def _user_name() -> str:
    uid = os.geteuid()
    return "root" if uid == 0 else f"your own user (uid {uid})"


def _findable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _make_slot_dir(index: int) -> Path:
    """A root-owned directory that the sandbox uid can enter but not write to; its name holds
    this process's pid, so a later evolve can tell it from a live one's."""
    directory = Path(tempfile.mkdtemp(prefix=f"evolve-slot{index}-{os.getpid()}-"))
    directory.chmod(0o755)
    return directory


def sweep_stale(parents: Sequence[Path]) -> list[Path]:
    """Remove slot directories (in the temporary directory, their scratch tmpfs unmounted) and
    slot cgroups (in ``parents``) that processes which no longer exist left behind: an evolve
    killed with SIGKILL cannot clean up. Those of live processes, and what this user may not
    remove, are left alone. Returns what was removed."""
    removed = []
    sweep_mounts(Path(tempfile.gettempdir()).resolve(), _alive)  # before their folders go
    for path in Path(tempfile.gettempdir()).glob("evolve-slot*-*-*"):
        owner = path.name.split("-")[2]
        if owner.isdigit() and not _alive(int(owner)) and path.is_dir() and _owned(path):
            remove_tree(str(path))
            removed.append(path)
    for parent in parents:
        for path in parent.glob("evolve-*-*-*"):
            owner = path.name.split("-")[1]
            if owner.isdigit() and not _alive(int(owner)):
                PidsCgroup(path / _CANDIDATE).remove()  # a v2 slot's child, first
                PidsCgroup(path).remove()
                removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owned(path: Path) -> bool:
    try:
        return path.lstat().st_uid == os.geteuid()
    except OSError:
        return False


def hidden_paths(problem_root: Path, extra: Sequence[Path] = ()) -> tuple[Path, ...]:
    """Host paths masked in the sandbox: the problem folder, the parent's home, and what a
    checkout on the interpreter's path would show: every shipped problem (their scorers), both
    in the checkout and bundled into the package, and the runs folder (every program, metric
    and model reply of earlier runs)."""
    checkout = RUNNER_DIR.parent
    paths = [
        problem_root.resolve(),
        *extra,
        checkout / "problems",
        checkout / "runs",
        checkout / "evolve" / "_bundled",
        Path.cwd() / "runs",
    ]
    home = os.environ.get("HOME")
    if home:
        with contextlib.suppress(OSError):
            paths.append(Path(home).resolve())
    return tuple(dict.fromkeys(p for p in paths if p != Path("/")))
