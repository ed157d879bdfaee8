"""Checks that .ci/cgroup2-vm-guest runs inside its pure cgroup v2 guest.

``skips JUNIT WHO``: fail when a test that a per-slot cgroup should let run was skipped (the
tests' own probes said "no cgroup here"), printing every skip and its reason.

``slots WHO``: fail unless a slot's sandbox, under bubblewrap, gets one cgroup v2 directory
with memory.max, pids.max and cpu.max, the memory and CPU cgroups being v2's (not v1's, not
none), as the tests' own probes cannot tell.

``cli``: evolve eval as the user meets it, on three hostile candidates, from the user's cgroup:
memory (four children of 300 MB under memory_mb=512), CPU (eight busy workers under
cpu_time_s=1) and a fork bomb (max_processes=16); prints the measured figures and fails when a
limit did not hold or the start-up warning names a memory or CPU gap.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent
TOY = SRC / "tests" / "evaluators" / "fixtures" / "toy"

#: Tests that may skip in the guest, per user, with why.
ALLOWED_SKIPS: dict[str, dict[str, str]] = {
    "root": {},
    "nobody": {
        # they delegate a scope to nobody, as root; this pass is itself that delegated user
        "test_a_user_takes_a_delegated_cgroup_and_gives_its_slots_the_controllers": "needs root",
        "test_nothing_is_taken_where_nothing_is_delegated": "needs root",
    },
}

MEMORY = """import os, time
def run():
    kids = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:
            block = bytearray(300 * 2**20)
            for i in range(0, len(block), 4096):
                block[i] = 1
            time.sleep(3)
            os._exit(0)
        kids.append(pid)
    killed = sum(os.waitpid(pid, 0)[1] != 0 for pid in kids)
    return {'x': killed}
"""

CPU = """import os
def run():
    pids = []
    for _ in range(8):
        pid = os.fork()
        if pid == 0:
            while True:
                pass
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    return {'x': 1}
"""

FORK_BOMB = """import os, time
def run():
    forked = 0
    while forked < 10000:
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        forked += 1
    return {'x': forked}
"""


def skips(junit: Path, who: str) -> int:
    """Print every skipped test; 1 when one not allowed for ``who`` was skipped."""
    bad = 0
    for case in ET.parse(junit).getroot().iter("testcase"):
        skipped = case.find("skipped")
        if skipped is None:
            continue
        name = f"{case.get('classname')}::{case.get('name')}"
        reason = skipped.get("message", "")
        allowed = any(name.endswith(key) for key in ALLOWED_SKIPS[who])
        bad += not allowed
        print(f"{'allowed' if allowed else 'NOT ALLOWED'} skip as {who}: {name}: {reason}")
    return 1 if bad else 0


async def _slot_cgroups() -> list[str]:
    """What is missing from the first slot's cgroups on the toy problem (empty: all three
    limits in one v2 directory)."""
    from evaluators.local import LocalEvaluator
    from evolve.config import EvaluatorConfig
    from evolve.problem import load_problem

    ev = LocalEvaluator(load_problem(TOY), EvaluatorConfig(concurrency=1, isolation="bwrap"))
    try:
        result = await ev.evaluate("def run():\n    return {'x': 1}\n")
        slot = ev._slots._slots[0]
        missing = [] if result.status == "evaluated" else [f"a trivial candidate: {result}"]
        if slot.v2 is None:
            return [*missing, "no cgroup v2 directory"]
        print(f"slot cgroup: {slot.v2}: " + ", ".join(
            f"{name} {(slot.v2 / name).read_text().strip()}"
            for name in ("memory.max", "memory.swap.max", "pids.max", "cpu.max")
            if (slot.v2 / name).exists()
        ))  # fmt: skip
        if slot.memory is None or not slot.memory.v2 or slot.memory.path != slot.v2:
            missing.append(f"memory cgroup {slot.memory and slot.memory.path}")
        if slot.cpu is None or not slot.cpu.v2 or slot.cpu.paths != (slot.v2,):
            missing.append(f"CPU cgroup {slot.cpu and slot.cpu.paths}")
        if not (slot.v2 / "pids.max").exists():
            missing.append("pids.max")
        return missing
    finally:
        await ev.aclose()


def slots(who: str) -> int:
    """1 when the slot's memory, pids and CPU limits are not all in its cgroup v2 directory."""
    missing = asyncio.run(_slot_cgroups())
    for what in missing:
        print(f"slots FAILED as {who}: {what}")
    return 1 if missing else 0


def _evaluate(work: Path, code: str, limits: dict[str, float]) -> tuple[dict[str, object], str, float]:
    """``evolve eval`` of ``code`` on the toy problem with ``limits``: its JSON, its stderr, and
    the wall time."""
    problem = work / "toy"
    shutil.rmtree(problem, ignore_errors=True)
    shutil.copytree(TOY, problem)
    text = (problem / "problem.yaml").read_text().split("limits:")[0]
    text += "limits:\n" + "".join(f"  {key}: {value}\n" for key, value in limits.items())
    (problem / "problem.yaml").write_text(text + "env: []\n")
    (work / "candidate.py").write_text(code)
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "evolve.cli", "eval", "problem=toy", "candidate.py"],
        cwd=work, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"evolve eval failed ({proc.returncode}): {proc.stderr}")
    return json.loads(proc.stdout), proc.stderr, elapsed


def _message(result: dict[str, object]) -> str:
    error = result.get("error")
    return str(error.get("message", "")) if isinstance(error, dict) else ""


def cli() -> int:
    """Evaluate the three hostile candidates; print figures; 1 when a limit did not hold."""
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        result, stderr, wall = _evaluate(work, MEMORY, {"timeout_s": 20, "memory_mb": 512})
        gaps = [line for line in stderr.splitlines() if "not bounded per candidate" in line]
        print(f"cli memory: status {result['status']}, metrics {result['metrics']}, {wall:.1f} s: {_message(result)}")
        print(f"cli start-up warning: {gaps or 'none'}")
        killed = result["metrics"] if isinstance(result["metrics"], dict) else {}
        if result["status"] != "memory" and not killed.get("score"):
            failures.append("four children of 300 MB under memory_mb=512 were not stopped")
        if any("memory" in g or "CPU" in g for g in gaps):
            failures.append(f"the start-up warning names a memory or CPU gap: {gaps}")

        result, _, wall = _evaluate(work, CPU, {"timeout_s": 30, "cpu_time_s": 1})
        message = _message(result)
        print(f"cli cpu: status {result['status']}, {wall:.1f} s of wall time: {message}")
        if "exceeded the CPU-time limit of 1 s (its processes together used" not in message:
            failures.append("eight busy workers under cpu_time_s=1 were not stopped by the CPU cgroup")

        result, _, wall = _evaluate(work, FORK_BOMB, {"timeout_s": 20, "max_processes": 16})
        print(f"cli fork bomb: status {result['status']}, metrics {result['metrics']}, {wall:.1f} s: {_message(result)}")
        metrics = result["metrics"] if isinstance(result["metrics"], dict) else {}
        if result["status"] != "evaluated" or not 0 < float(metrics.get("score", 1e9)) <= 20:
            failures.append("the fork bomb was not bounded near max_processes=16")
    for failure in failures:
        print(f"cli FAILED: {failure}")
    return 1 if failures else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["skips"] and len(argv) == 3:
        return skips(Path(argv[1]), argv[2])
    if argv[:1] == ["slots"] and len(argv) == 2:
        return slots(argv[1])
    if argv == ["cli"]:
        return cli()
    print("usage: cgroup2_vm.py skips JUNIT WHO | slots WHO | cli", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
