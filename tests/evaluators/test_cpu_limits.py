"""CPU per candidate: a CPU cgroup per slot caps the cores its processes use together, and their
CPU time together is held to the CPU-time limit; without one, the limit holds per process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from evaluators.cgroup import CFS_PERIOD_US, CpuCgroup, parse_usage, quota_us
from evaluators.cpu_budget import MIN_INTERVAL_S, CpuBudget, CpuMeter
from evaluators.local import LocalEvaluator
from evaluators.outcome import Ending, decide
from evaluators.slots import _remove_cgroups, joining
from evolve.problem import Problem
from evolve.records import Status
from tests.evaluators.conftest import without_namespaces
from tests.evaluators.processes import marked_pids


def _own_v1(controller: str) -> Path | None:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return Path("/sys/fs/cgroup") / controller / path.lstrip("/")
    return None


def _v2_cpu_delegated() -> bool:
    """Whether this process's cgroup v2 is given the cpu controller and is writable (root, or
    delegated to this user), judged from the kernel's files alone; False without v2."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields, _, rest = line.partition(" - ")
        if rest.startswith("cgroup2 ") and fields.split()[3] == "/":
            mount = Path(fields.split()[4])
            break
    else:
        return False
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    directory = mount / next(x[3:] for x in lines if x.startswith("0::")).lstrip("/")
    with contextlib.suppress(OSError):
        given = set((directory / "cgroup.controllers").read_text().split())
        return "cpu" in given and os.access(directory, os.W_OK)
    return False


def _cpu_cgroups_here() -> bool:
    """Whether this machine lets this process make CPU cgroups, judged from the kernel's files
    alone (not from the code under test): root, with cgroup v1's cpu and cpuacct controllers,
    or a cgroup v2 of its own with the cpu controller given to it (root, or delegated)."""
    cpu, acct = _own_v1("cpu"), _own_v1("cpuacct")
    v1 = os.geteuid() == 0 and cpu is not None and acct is not None
    if v1 and (cpu / "cpu.cfs_quota_us").exists() and (acct / "cpuacct.usage").exists():
        return True
    return _v2_cpu_delegated()


needs_cpu_cgroup = pytest.mark.skipif(
    not _cpu_cgroups_here(),
    reason="a CPU cgroup per slot needs root and cgroup v1's cpu and cpuacct controllers, or "
    "a cgroup v2 given the cpu controller (root, or delegated to the user)",
)


def _busy_workers(n: int, marker: str) -> str:
    """A candidate that forks ``n`` workers, each spinning forever, and waits for them."""
    return (
        "import ctypes, os\n"
        "def run():\n"
        "    pids = []\n"
        f"    for _ in range({n}):\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n"
        f"            ctypes.CDLL(None).prctl(15, {marker.encode()!r})\n"
        "            while True:\n"
        "                pass\n"
        "        pids.append(pid)\n"
        "    for pid in pids:\n"
        "        os.waitpid(pid, 0)\n"
        "    return {'x': 1}\n"
    )


def _cpu_time_s(pid: int) -> float | None:
    """The CPU time of ``pid`` from ``/proc`` (the kernel's count per process, independent of
    any cgroup); None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _watch_cpu(marker: str, seen: dict[int, float], stop: asyncio.Event) -> None:
    """Record the CPU time of every live process named ``marker`` until ``stop``."""
    while not stop.is_set():
        for pid in marked_pids(marker):
            used = _cpu_time_s(pid)
            if used is not None:
                seen[pid] = max(seen.get(pid, 0.0), used)
        await asyncio.sleep(0.02)


async def _run_watched(ev: LocalEvaluator, code: str, marker: str) -> tuple[Status, str, float, float]:
    """Evaluate ``code``; its status, error message, wall time and its workers' CPU time."""
    seen: dict[int, float] = {}
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch_cpu(marker, seen, stop))
    start = time.monotonic()
    try:
        result = await ev.evaluate(code)
    finally:
        elapsed = time.monotonic() - start
        stop.set()
        await watcher
    message = result.error.message if result.error else ""
    return result.status, message, elapsed, sum(seen.values())


@needs_cpu_cgroup
@pytest.mark.parametrize(("isolation", "mode"), [("bwrap", "warm"), ("bwrap", "cold"), ("process", "warm")])
async def test_cpu_time_is_limited_per_candidate_not_per_process(
    make_problem: Callable[..., Problem],
    evaluator_for: Callable[..., LocalEvaluator],
    isolation: str,
    mode: str,
) -> None:
    # Eight busy workers, each with its own RLIMIT_CPU of 1 s, would use some 8 s of CPU
    # between them; the slot's CPU cgroup stops the whole candidate at 1 s of CPU in total.
    problem = make_problem(limits={"timeout_s": 20, "cpu_time_s": 1})
    if isolation == "process":  # no bubblewrap: a sandbox uid where root has one, else unconfined
        ev = await without_namespaces(problem, mode=mode, concurrency=1)
    else:
        ev = evaluator_for(problem, isolation=isolation, mode=mode, concurrency=1)
    marker = f"evtest-cpu{os.getpid() % 10000}"
    try:
        status, message, elapsed, used = await _run_watched(ev, _busy_workers(8, marker), marker)
        assert marked_pids(marker) == []  # every worker died with the candidate
        after = await ev.evaluate("def run():\n    return {'x': 3}\n")
        assert after.metrics == {"score": 3.0}  # the slot serves the next candidate
        held = ev._slots._slots[0].cpu is not None
    finally:
        await ev.aclose()
    assert status is Status.TIMEOUT, message
    assert "exceeded the CPU-time limit of 1 s (its processes together used" in message
    assert 0.7 < used < 1.6, f"the workers used {used:.2f} s of CPU together"
    assert elapsed < 8, elapsed
    assert held


@needs_cpu_cgroup
async def test_cpu_cores_caps_a_candidates_processes_together(
    make_problem: Callable[..., Problem], evaluator_for: Callable[..., LocalEvaluator]
) -> None:
    # Two processes that spin for 1.5 s of wall time under a cap of half a core use half a
    # core between them (without the cap: up to two cores on a machine of two).
    problem = make_problem(limits={"timeout_s": 10, "cpu_time_s": 10, "cpu_cores": 0.5})
    code = (
        "import os, time\n"
        "def spin(seconds):\n"
        "    end = time.monotonic() + seconds\n"
        "    while time.monotonic() < end:\n"
        "        pass\n"
        "def run():\n"
        "    start = time.monotonic()\n"
        "    r, w = os.pipe()\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        spin(1.5)\n"
        "        os.write(w, repr(time.process_time()).encode())\n"
        "        os._exit(0)\n"
        "    spin(1.5)\n"
        "    os.waitpid(pid, 0)\n"
        "    child = float(os.read(r, 100))\n"
        "    return {'x': (time.process_time() + child) / (time.monotonic() - start)}\n"
    )
    ev = evaluator_for(problem, concurrency=1)
    try:
        result = await ev.evaluate(code)
    finally:
        await ev.aclose()
    assert result.status is Status.EVALUATED, result.error
    cores = result.metrics["score"]
    assert 0.15 < cores < 0.7, f"two busy processes used {cores:.2f} cores under a cap of 0.5"


async def test_the_start_warning_says_whether_cpu_holds_per_candidate(
    toy_problem: Problem,
    evaluator_for: Callable[..., LocalEvaluator],
    caplog: pytest.LogCaptureFixture,
) -> None:
    ev = evaluator_for(toy_problem, concurrency=1)
    try:
        with caplog.at_level("WARNING", logger="evaluators"):
            await ev.evaluate("def run():\n    return {'x': 1}\n")
        held = ev._slots._slots[0].cpu is not None
    finally:
        await ev.aclose()
    gaps = [r.getMessage() for r in caplog.records if "not bounded per candidate" in r.getMessage()]
    assert held is _cpu_cgroups_here()
    assert len(gaps) <= 1
    if not held:
        assert gaps and "the CPU-time limit holds per process" in gaps[0], gaps
        if os.geteuid() != 0:  # and how an ordinary user gets a cgroup of their own
            assert "systemd-run --user --scope -p Delegate=yes" in gaps[0], gaps
    else:  # nothing about CPU, and never a warning that names nothing
        assert not any("CPU" in g for g in gaps), gaps
        assert all(g.rstrip().split(": ", 1)[1:] != [""] for g in gaps), gaps


def test_a_v2_slot_cgroup_gets_the_cap_and_reads_cpu_stat(tmp_path: Path) -> None:
    # Not exercised on a real cgroup v2 host here: a fake directory stands in for the slot's.
    (tmp_path / "cpu.max").write_text("max 100000\n")
    (tmp_path / "cpu.stat").write_text(
        "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 7\n"
    )
    cgroup = CpuCgroup.in_v2(tmp_path, 1.5)
    assert cgroup is not None and cgroup.v2 and cgroup.cores == 1.5
    assert (tmp_path / "cpu.max").read_text() == f"150000 {CFS_PERIOD_US}"
    assert cgroup.procs_files == (str(tmp_path / "cgroup.procs"),)
    assert cgroup.usage_s() == 2.5


def test_a_v1_slot_cgroup_is_capped_in_cpu_and_measured_in_cpuacct(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpuacct").mkdir()
    cgroup = CpuCgroup.in_v1(tmp_path / "cpu" / "slot", tmp_path / "cpuacct" / "slot", 2)
    assert cgroup is not None and not cgroup.v2
    assert (tmp_path / "cpu" / "slot" / "cpu.cfs_quota_us").read_text() == "200000"
    assert (tmp_path / "cpu" / "slot" / "cpu.cfs_period_us").read_text() == str(CFS_PERIOD_US)
    (tmp_path / "cpuacct" / "slot" / "cpuacct.usage").write_text("1250000000\n")
    assert cgroup.usage_s() == 1.25
    assert len(cgroup.procs_files) == 2


def test_cpu_usage_parsing_and_quotas() -> None:
    assert parse_usage("user_usec 5\nusage_usec 1000000\n", v2=True) == 1.0
    assert parse_usage("nr_periods 1\n", v2=True) == 0.0
    assert parse_usage("", v2=False) == 0.0
    assert quota_us(1.0) == CFS_PERIOD_US
    assert quota_us(0.001) == 1000  # the kernel's smallest quota


def test_the_sandbox_starts_inside_every_cgroup_it_is_given(tmp_path: Path) -> None:
    files = [str(tmp_path / "a procs"), str(tmp_path / "b")]
    proc = subprocess.run(
        joining(files, ["/bin/sh", "-c", "echo $$"]), capture_output=True, text=True, check=True
    )
    pid = proc.stdout.strip()  # the shell wrote its own pid, then became the command
    assert [Path(f).read_text().strip() for f in files] == [pid, pid]
    assert joining([], ["x"]) == ["x"]


def test_the_budget_is_read_only_when_the_limit_could_have_been_reached() -> None:
    usage = [10.0]
    budget = CpuBudget(CpuMeter(lambda: usage[0], rate=2.0), limit_s=3.0, now=100.0)
    assert budget.next_check == 101.5  # 3 s of CPU at 2 cores at most
    usage[0] = 12.0
    assert not budget.check(101.5)
    assert budget.used_s == 2.0 and budget.next_check == 102.0
    usage[0] = 12.99
    assert not budget.check(102.0)
    assert budget.next_check == pytest.approx(102.0 + MIN_INTERVAL_S)
    usage[0] = 13.0
    assert budget.check(102.02) and budget.exceeded and budget.used_s == 3.0


def test_a_cpu_kill_is_reported_as_the_cpu_time_limit() -> None:
    ending = Ending(
        report=b"",
        report_truncated=False,
        returncode=-9,
        timed_out=False,
        timeout_s=20,
        cpu_s=1,
        max_report_bytes=1024,
        cpu_exceeded=True,
        cpu_used_s=1.034,
    )
    status, _, message = decide(ending)
    assert status is Status.TIMEOUT
    assert message == "exceeded the CPU-time limit of 1 s (its processes together used 1.03 s of CPU)"


async def test_a_slot_cgroup_the_kernel_still_holds_is_removed_once_it_lets_go(tmp_path: Path) -> None:
    # Right after its processes are killed, removing a cgroup fails (EBUSY) until they have
    # fully exited; a plain directory with a file in it fails the same way until emptied.
    busy = tmp_path / "evolve-1-x-0-cpu"
    busy.mkdir()
    (busy / "held").write_text("")
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, (busy / "held").unlink)
    cgroup = CpuCgroup((busy,), busy / "cpuacct.usage", False, 1.0)
    await _remove_cgroups([cgroup])
    assert not busy.exists()


@pytest.mark.parametrize("mode", ["warm", "cold"])
async def test_a_templates_start_up_is_not_counted_as_the_candidates_cpu_time(
    make_problem: Callable[..., Problem], evaluator_for: Callable[..., LocalEvaluator], mode: str
) -> None:
    # The template's imports (some 0.3 s of CPU in the slot's cgroup) happen before the
    # candidate starts: a trivial candidate stays far under a CPU-time limit of 0.15 s.
    problem = make_problem(
        imports=["numpy", "scipy", "sqlalchemy"], limits={"timeout_s": 5, "cpu_time_s": 0.15}
    )
    ev = evaluator_for(problem, mode=mode, concurrency=1)
    try:
        results = [await ev.evaluate("def run():\n    return {'x': 1}\n") for _ in range(2)]
    finally:
        await ev.aclose()
    assert [r.status for r in results] == [Status.EVALUATED] * 2, results[0].error
