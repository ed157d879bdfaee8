"""A cgroup v2 subtree delegated to evolve: found, taken (processes moved into a leaf so the
controllers can be enabled), and each slot's memory, pids and CPU limits set in one directory.

The delegation is exercised on the machine's real cgroup v2 hierarchy, as an unprivileged user
whose subtree root hands over the way systemd's ``Delegate=yes`` does (the directory and its
``cgroup.procs``, ``cgroup.subtree_control`` and ``cgroup.threads`` chowned to the user), with
every controller a slot wants that the hierarchy has free (on a hybrid cgroup v1 machine, such
as CI's, the memory, pids and cpu controllers are v1's, so ``hugetlb`` stands in for them there;
``.ci/cgroup2-vm`` runs these tests on a kernel whose v2 has all three)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import evaluators.cgroup_v2 as cgroup_v2
from evaluators.cgroup_v2 import LEAF, WANTED, V2Parent, cgroup2_mount
from evaluators.isolation import Isolation
from evaluators.slots import PoolSettings, Slot, SlotPool, _remove_cgroups, sweep_stale

NOBODY = 65534
HYBRID = (
    "25 22 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n"
    "35 25 0:30 / /sys/fs/cgroup/unified rw,nosuid,relatime shared:10 - cgroup2 cgroup2 rw\n"
    "36 25 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
)


def test_the_v2_mount_is_found_where_it_is() -> None:
    assert cgroup2_mount(HYBRID) == Path("/sys/fs/cgroup/unified")
    pure = "30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev - cgroup2 cgroup2 rw,nsdelegate\n"
    assert cgroup2_mount(pure) == Path("/sys/fs/cgroup")
    # a bind of a sub-tree (a container's view of another cgroup) is not the hierarchy's root
    assert cgroup2_mount("40 30 0:26 /user.slice /mnt rw - cgroup2 cgroup2 rw\n") is None
    assert cgroup2_mount(HYBRID.splitlines()[2]) is None


def _mount() -> Path | None:
    return cgroup2_mount(Path("/proc/self/mountinfo").read_text())


def _free_controllers(mount: Path) -> list[str]:
    """The controllers the v2 hierarchy's root can hand out: those a slot wants (memory, a
    domain controller, with the threaded pids and cpu where v2 has them), else any one."""
    given = (mount / "cgroup.controllers").read_text().split()
    return [c for c in WANTED if c in given] or given[:1]


@pytest.fixture
def delegated_scope() -> Iterator[tuple[Path, list[str]]]:
    """A cgroup under the v2 root delegated to ``nobody`` as systemd delegates a user scope,
    with controllers given to it; removed, with everything under it, afterwards."""
    mount = _mount()
    if os.geteuid() != 0 or mount is None:
        pytest.skip("needs root (to delegate) and a cgroup v2 hierarchy")
    controllers = _free_controllers(mount)
    if not controllers:
        pytest.skip("the cgroup v2 hierarchy has no controller to hand out")
    top = mount / "cgroup.subtree_control"
    enabled_before = set(top.read_text().split())
    for controller in controllers:
        top.write_text(f"+{controller}")
    scope = mount / f"evolve-test-{os.getpid()}.scope"
    scope.mkdir()
    for path in (
        scope,
        *(scope / f for f in ("cgroup.procs", "cgroup.subtree_control", "cgroup.threads")),
    ):
        os.chown(path, NOBODY, NOBODY)
    try:
        yield scope, controllers
    finally:
        for child in sorted(scope.rglob("*"), key=lambda p: -len(p.parts)):
            if child.is_dir():
                for pid in (child / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), 9)
                with contextlib.suppress(OSError):
                    child.rmdir()
        with contextlib.suppress(OSError):
            scope.rmdir()
        for controller in set(controllers) - enabled_before:
            with contextlib.suppress(OSError):
                top.write_text(f"-{controller}")


def _as_nobody_in(cgroup: Path, controllers: list[str]) -> dict[str, object]:
    """Run, as nobody and started in ``cgroup`` (root puts it there, as systemd-run does),
    what evolve does at start: take the delegated subtree, then start a process in a slot's
    cgroup. The module's own source runs, with the system's interpreter nobody can execute."""
    source = Path(cgroup_v2.__file__).read_text()
    driver = textwrap.dedent(
        f"""
        import json, subprocess
        found = delegated_v2(wanted={controllers!r})
        report = {{"own": open("/proc/self/cgroup").read().split("0::")[1].strip()}}
        if found is not None:
            slot = found.make("evolve-1-2-3")
            child = subprocess.run(
                ["/bin/sh", "-c", 'echo $$ > "$1"/cgroup.procs && cat /proc/self/cgroup', "sh", str(slot)],
                capture_output=True, text=True,
            )
            report.update(
                parent=str(found.path), controllers=sorted(found.controllers),
                child=child.stdout.split("0::")[-1].strip(), error=child.stderr,
            )
        print(json.dumps(report))
        """
    )
    shell = f'echo $$ > {cgroup}/cgroup.procs && exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups "$@"'
    done = subprocess.run(
        ["/bin/sh", "-c", shell, "sh", "/usr/bin/python3", "-I", "-c", source + driver],
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_a_user_takes_a_delegated_cgroup_and_gives_its_slots_the_controllers(
    delegated_scope: tuple[Path, list[str]],
) -> None:
    scope, controllers = delegated_scope
    mount = _mount()
    assert mount is not None
    where = "/" + str(scope.relative_to(mount))
    report = _as_nobody_in(scope, controllers)
    # The scope held the process, so the controllers could not be enabled until it moved out
    # (had the threaded cpu or pids been enabled first, memory would have met EOPNOTSUPP).
    assert report["parent"] == str(scope), report
    assert report["controllers"] == sorted(controllers), report
    assert report["own"] == f"{where}/{LEAF}"
    assert set(controllers) <= set((scope / "cgroup.subtree_control").read_text().split())
    assert report["child"] == f"{where}/evolve-1-2-3", report
    names = {f.name.split(".")[0] for f in (scope / "evolve-1-2-3").iterdir()}
    assert set(controllers) <= names, names
    # A later evolve, started from a process left in the leaf, makes its slots beside it.
    again = _as_nobody_in(scope / LEAF, controllers)
    assert again["parent"] == str(scope) and again["own"] == f"{where}/{LEAF}", again


def test_nothing_is_taken_where_nothing_is_delegated(
    delegated_scope: tuple[Path, list[str]],
) -> None:
    scope, controllers = delegated_scope
    os.chown(scope / "cgroup.subtree_control", 0, 0)
    os.chown(scope, 0, 0)
    report = _as_nobody_in(scope, controllers)
    assert "parent" not in report, report
    assert not (scope / LEAF).exists()


def _pool(kind: str = "process") -> SlotPool:
    pool = SlotPool(
        PoolSettings(
            size=1,
            python="python3",
            isolation="process",
            warm=True,
            imports=(),
            passthrough=(),
            hidden=(),
            max_processes=16,
            memory_mb=512,
            cpu_cores=1.5,
        )
    )
    pool.isolation = Isolation(kind)
    return pool


async def test_a_slot_gets_all_three_limits_in_one_v2_directory(tmp_path: Path) -> None:
    # The memory and cpu controllers are cgroup v1's on CI: a directory stands in for a
    # delegated v2 cgroup here, to show what each slot's cgroup is given and that the whole
    # sandbox joins that one directory.
    pool = _pool()
    slot = Slot(0, tmp_path / "slot")
    pool._cgroups_for(slot, "evolve-1-2-0", None, V2Parent(tmp_path, frozenset(WANTED)))
    directory = tmp_path / "evolve-1-2-0"
    assert slot.v2 == directory
    assert (directory / "memory.max").read_text() == str((512 + 256) * 2**20)
    assert (directory / "memory.swap.max").read_text() == "0"
    assert (directory / "pids.max").read_text() == "20"
    assert (directory / "cpu.max").read_text() == "150000 100000"
    assert slot.memory is not None and slot.memory.v2 and slot.cpu is not None and slot.cpu.v2
    assert slot.sandbox_cgroups() == [str(directory / "cgroup.procs")]
    # process isolation: the candidate runs in a child, which a kill at a limit (or a cancelled
    # run) empties without killing the supervisor, still under the slot's limits
    assert slot.cgroup is not None and slot.cgroup.path == directory / "candidate"
    assert slot.confinement.cgroup_procs == str(directory / "candidate" / "cgroup.procs")


async def test_a_controller_not_delegated_is_not_written(tmp_path: Path) -> None:
    pool = _pool("bwrap")
    slot = Slot(0, tmp_path / "slot")
    pool._cgroups_for(slot, "evolve-1-2-0", None, V2Parent(tmp_path, frozenset({"pids"})))
    directory = tmp_path / "evolve-1-2-0"
    try:
        assert (directory / "pids.max").exists()
        assert not (directory / "memory.max").exists() and not (directory / "cpu.max").exists()
        assert slot.sandbox_cgroups()[0] == str(directory / "cgroup.procs")
        # under bubblewrap the supervisor is in it too: cancelling kills through the PID namespace
        assert slot.cgroup is None
        # memory and CPU are left to cgroup v1, where root has it (as on a hybrid machine)
        for cgroup in (slot.memory, slot.cpu):
            assert cgroup is None or not cgroup.v2
    finally:
        await _remove_cgroups([c for c in (slot.memory, slot.cpu) if c is not None])


def test_a_stale_v2_slot_cgroup_goes_with_its_candidate_child(tmp_path: Path) -> None:
    # An evolve killed with SIGKILL leaves its slot's cgroup and the child its candidate ran in
    # (without bubblewrap); the next start removes both, the child first (a cgroup with a child
    # cannot be removed). Empty directories stand in for the cgroups.
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid is free once it has exited
    stale = tmp_path / f"evolve-{gone.pid}-7f00-0"
    (stale / "candidate").mkdir(parents=True)
    assert sweep_stale([tmp_path]) and not stale.exists()
