"""The local evaluator end to end: each status, the environment, the result channel, killing."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evaluators.local import LocalEvaluator
from evaluators.workers import ScorerLoadError
from evolve.problem import Problem
from evolve.records import Status
from tests.evaluators.conftest import without_namespaces
from tests.evaluators.processes import marked_pids, spawner, wait_marked


async def test_returned_output_is_scored_with_feedback(evaluator: LocalEvaluator) -> None:
    result = await evaluator.evaluate("def run():\n    return {'x': 2.5}\n")
    assert result.status is Status.EVALUATED
    assert result.metrics == {"score": 2.5}
    assert result.feedback == "x was 2.5"
    assert result.error is None
    assert result.wall_time_s > 0


async def test_numpy_values_are_converted_to_json(evaluator: LocalEvaluator) -> None:
    code = "import numpy as np\ndef run():\n    return {'x': np.float64(3.0), 'v': np.arange(3)}\n"
    result = await evaluator.evaluate(code)
    assert result.status is Status.EVALUATED, result.error
    assert result.metrics == {"score": 3.0}


async def test_syntax_error_names_the_line(evaluator: LocalEvaluator) -> None:
    result = await evaluator.evaluate("x = 1\ndef run(:\n    pass\n")
    assert result.status is Status.SYNTAX_ERROR
    assert result.error is not None and "line 2" in result.error.message


async def test_exception_keeps_candidate_frames_only(evaluator: LocalEvaluator) -> None:
    code = "def helper():\n    raise ValueError('boom')\n\ndef run():\n    return helper()\n"
    result = await evaluator.evaluate(code)
    assert result.status is Status.EXCEPTION
    assert result.error is not None
    assert "ValueError: boom" in result.error.message
    assert "candidate.py" in result.error.message
    assert "child.py" not in result.error.message
    assert result.error.stage == "run"


async def test_missing_entry_function_is_an_exception(evaluator: LocalEvaluator) -> None:
    result = await evaluator.evaluate("def main():\n    return 1\n")
    assert result.status is Status.EXCEPTION
    assert result.error is not None and "'run'" in result.error.message


async def test_wall_time_limit_is_a_timeout(
    make_problem: Callable[..., Problem], evaluator_for: Callable[..., LocalEvaluator]
) -> None:
    ev = evaluator_for(make_problem(limits={"timeout_s": 0.5}))
    try:
        start = time.monotonic()
        result = await ev.evaluate("import time\ndef run():\n    time.sleep(60)\n")
        assert time.monotonic() - start < 3
    finally:
        await ev.aclose()
    assert result.status is Status.TIMEOUT
    assert result.error is not None and "wall-time" in result.error.message


async def test_cpu_time_limit_is_a_timeout(
    make_problem: Callable[..., Problem], evaluator_for: Callable[..., LocalEvaluator]
) -> None:
    ev = evaluator_for(make_problem(limits={"timeout_s": 5, "cpu_time_s": 1}))
    try:
        result = await ev.evaluate("def run():\n    while True:\n        pass\n")
    finally:
        await ev.aclose()
    assert result.status is Status.TIMEOUT
    assert result.error is not None and "CPU" in result.error.message


async def test_memory_limit_is_a_memory_failure(evaluator: LocalEvaluator) -> None:
    code = "def run():\n    blocks = []\n    while True:\n        blocks.append(bytearray(50 * 2**20))\n"
    result = await evaluator.evaluate(code)
    assert result.status is Status.MEMORY


async def test_nan_output_is_bad_output(evaluator: LocalEvaluator) -> None:
    result = await evaluator.evaluate("def run():\n    return {'x': float('inf')}\n")
    assert result.status is Status.BAD_OUTPUT
    assert result.error is not None and "NaN or infinity" in result.error.message


async def test_unserializable_output_is_bad_output(evaluator: LocalEvaluator) -> None:
    result = await evaluator.evaluate("def run():\n    return {'x': {1, 2}}\n")
    assert result.status is Status.BAD_OUTPUT
    assert result.error is not None and "set" in result.error.message


async def test_scorer_rejection_is_rejected_with_message(evaluator: LocalEvaluator) -> None:
    result = await evaluator.evaluate("def run():\n    return {'reject': 'overlapping circles'}\n")
    assert result.status is Status.REJECTED
    assert result.error is not None
    assert result.error.message == "overlapping circles"
    assert result.error.stage == "score"


async def test_a_scorer_crash_is_scorer_error_with_its_traceback(evaluator: LocalEvaluator) -> None:
    result = await evaluator.evaluate("def run():\n    return {'crash': 1}\n")
    assert result.status is Status.SCORER_ERROR  # the scorer's bug, not the candidate's output
    assert result.error is not None and "the scorer crashed" in result.error.message
    assert "Traceback (most recent call last)" in result.error.message


@pytest.mark.parametrize(
    ("flag", "reason"),
    [
        ("nan_metric", "metric 'score' is not finite"),
        ("missing_primary", "primary metric 'score' is missing"),
        ("string_metric", "metric 'score' is not a number"),
    ],
)
async def test_invalid_metrics_are_bad_output(
    evaluator: LocalEvaluator, flag: str, reason: str
) -> None:
    result = await evaluator.evaluate(f"def run():\n    return {{'x': 1, {flag!r}: True}}\n")
    assert result.status is Status.BAD_OUTPUT
    assert result.error is not None and reason in result.error.message


async def test_candidate_sees_no_parent_variable_unless_listed(
    evaluator: LocalEvaluator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-parent-key")
    monkeypatch.setenv("EVOLVE_TEST_ALLOWED", "visible-value")
    code = (
        "import os\n"
        "def run():\n"
        "    print(sorted(os.environ))\n"
        "    print('allowed=' + os.environ.get('EVOLVE_TEST_ALLOWED', ''))\n"
        "    return {'x': float('OPENAI_API_KEY' in os.environ)}\n"
    )
    result = await evaluator.evaluate(code)
    assert result.status is Status.EVALUATED
    assert result.metrics == {"score": 0.0}
    assert "sk-secret" not in result.stdout_tail
    assert "allowed=visible-value" in result.stdout_tail


async def test_printed_fake_result_does_not_fake_the_result(evaluator: LocalEvaluator) -> None:
    code = (
        "import sys\n"
        "def run():\n"
        '    print(\'{"status": "ok", "output": {"x": 1000}}\')\n'
        "    sys.stdout.flush()\n"
        "    return {'x': 1}\n"
    )
    result = await evaluator.evaluate(code)
    assert result.status is Status.EVALUATED
    assert result.metrics == {"score": 1.0}
    assert '"x": 1000' in result.stdout_tail


async def test_output_is_truncated_with_a_marker(evaluator: LocalEvaluator) -> None:
    code = "def run():\n    print('a' * 100000 + 'END')\n    return {'x': 1}\n"
    result = await evaluator.evaluate(code)
    assert result.status is Status.EVALUATED
    assert "bytes of output truncated" in result.stdout_tail
    assert result.stdout_tail.rstrip().endswith("END")
    assert len(result.stdout_tail) < 9 * 1024


@pytest.mark.parametrize("mode", ["warm", "cold"])
async def test_timeout_kills_whole_process_tree(
    make_problem: Callable[..., Problem], evaluator_for: Callable[..., LocalEvaluator], mode: str
) -> None:
    marker = f"evtest-{uuid.uuid4().hex[:6]}"
    ev = evaluator_for(make_problem(limits={"timeout_s": 1}), mode=mode)
    try:
        result = await ev.evaluate(spawner(marker))
        assert result.status is Status.TIMEOUT
        assert await wait_marked(marker, count=0, within_s=1.0), marked_pids(marker)
    finally:
        await ev.aclose()


@pytest.mark.parametrize("mode", ["warm", "cold"])
async def test_cancelling_evaluate_kills_the_candidate(
    toy_problem: Problem, evaluator_for: Callable[..., LocalEvaluator], mode: str
) -> None:
    marker = f"evtest-{uuid.uuid4().hex[:6]}"
    ev = evaluator_for(toy_problem, mode=mode)
    try:
        task = asyncio.create_task(ev.evaluate(spawner(marker)))
        assert await wait_marked(marker, count=2, within_s=3.0)  # the candidate and its child
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await wait_marked(marker, count=0, within_s=1.0), marked_pids(marker)
        after = await ev.evaluate("def run():\n    return {'x': 4}\n")
        assert after.metrics == {"score": 4.0}
    finally:
        await ev.aclose()


async def test_concurrency_is_bounded(
    toy_problem: Problem, evaluator_for: Callable[..., LocalEvaluator], shared_dir: Path
) -> None:
    ev = await without_namespaces(toy_problem)  # the shared directory is visible
    code = (
        "import os, time\n"
        "def run():\n"
        f"    d = {str(shared_dir)!r}\n"
        "    open(os.path.join(d, f'start-{os.getpid()}'), 'w').write(repr(time.time()))\n"
        "    time.sleep(0.3)\n"
        "    open(os.path.join(d, f'end-{os.getpid()}'), 'w').write(repr(time.time()))\n"
        "    return {'x': 1}\n"
    )
    try:
        results = await asyncio.gather(*(ev.evaluate(code) for _ in range(4)))
    finally:
        await ev.aclose()
    assert all(r.status is Status.EVALUATED for r in results)
    spans = [
        (float(p.read_text()), float((shared_dir / p.name.replace("start", "end")).read_text()))
        for p in (shared_dir / name for name in os.listdir(shared_dir))
        if p.name.startswith("start-")
    ]
    for start, _ in spans:
        running = sum(1 for s, e in spans if s <= start < e)
        assert running <= 2


@pytest.mark.parametrize("isolation", ["bwrap", "process"])
async def test_cold_runs_contain_fork_bombs_and_daemons(
    make_problem: Callable[..., Problem],
    evaluator_for: Callable[..., LocalEvaluator],
    isolation: str,
) -> None:
    marker = f"evtest-{uuid.uuid4().hex[:6]}"
    name_self = f"    __import__('ctypes').CDLL(None).prctl(15, {marker.encode()!r})\n"
    daemon = (
        "import os, time\n"
        "def run():\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n" + "    " * 2 + name_self + "            time.sleep(60)\n"
        "        os._exit(0)\n"
        "    time.sleep(0.3)\n"
        "    return {'x': 1}\n"
    )
    bomb = (
        "import os\n"
        "def run():\n" + name_self + "    while True:\n"
        "        try:\n"
        "            os.fork()\n"
        "        except OSError:\n"
        "            pass\n"
    )
    problem = make_problem(limits={"timeout_s": 1, "max_processes": 16})
    if isolation == "bwrap":
        ev = evaluator_for(problem, mode="cold", isolation=isolation)
    else:
        ev = await without_namespaces(problem, mode="cold")
    try:
        assert (await ev.evaluate(daemon)).status is Status.EVALUATED
        assert await wait_marked(marker, count=0, within_s=1.0), marked_pids(marker)
        assert (await ev.evaluate(bomb)).status is Status.TIMEOUT
        assert await wait_marked(marker, count=0, within_s=1.0), marked_pids(marker)
    finally:
        await ev.aclose()


async def test_warm_candidates_share_no_state(evaluator: LocalEvaluator) -> None:
    first = (
        "import json, os\n"
        "def run():\n"
        "    json.LEAKED = True\n"
        "    open(os.path.join(os.environ['HOME'], 'left.txt'), 'w').write('x')\n"
        "    return {'x': 1}\n"
    )
    second = (
        "import json, os\n"
        "def run():\n"
        "    seen = hasattr(json, 'LEAKED') or os.path.exists('left.txt')\n"
        "    return {'x': float(seen)}\n"
    )
    assert (await evaluator.evaluate(first)).status is Status.EVALUATED
    assert (await evaluator.evaluate(second)).metrics == {"score": 0.0}


@pytest.mark.parametrize("mode", ["warm", "cold"])
async def test_nothing_a_candidate_leaves_in_its_directory_reaches_the_next(
    toy_problem: Problem, evaluator_for: Callable[..., LocalEvaluator], mode: str
) -> None:
    # One slot, so both candidates run in the same working directory, one after the other.
    litter = (
        "import os\n"
        "def run():\n"
        "    os.makedirs('deep/er/still', exist_ok=True)\n"
        "    open('deep/er/still/f.txt', 'w').write('x')\n"
        "    open('tmp/t.txt', 'w').write('x')\n"
        "    os.symlink('/', 'root')\n"
        "    os.makedirs('locked/in')\n"
        "    os.chmod('locked', 0)\n"  # its owner cannot list it: it is moved aside
        "    return {'x': 1}\n"
    )
    look = (
        "import os\n"
        "def run():\n"
        "    clean = sorted(os.listdir('.')) == ['candidate.py', 'tmp'] and not os.listdir('tmp')\n"
        "    return {'x': float(clean)}\n"
    )
    ev = evaluator_for(toy_problem, mode=mode, concurrency=1)
    try:
        results = [await ev.evaluate(code) for code in (look, litter, look, litter, look)]
    finally:
        await ev.aclose()
    assert [r.status for r in results] == [Status.EVALUATED] * 5, results
    assert [results[i].metrics for i in (0, 2, 4)] == [{"score": 1.0}] * 3


async def test_tmp_and_shm_are_fresh_for_every_candidate_and_litter_is_removed(
    toy_problem: Problem, evaluator_for: Callable[..., LocalEvaluator]
) -> None:
    # A warm sandbox lives for the whole run; what a candidate caches in /tmp or /dev/shm (an
    # answer, say) must not reach the next one, and a directory it locked is removed, not kept.
    cache = (
        "import os\n"
        "def run():\n"
        "    seen = [p for p in ('/tmp/answer', '/dev/shm/answer') if os.path.exists(p)]\n"
        "    written = 0\n"
        "    for p in ('/tmp/answer', '/dev/shm/answer'):\n"
        "        try:\n"
        "            open(p, 'w').write('42')\n"
        "            written += 1\n"
        "        except OSError:\n"
        "            pass\n"
        "    os.makedirs('locked/in')\n"
        "    open('locked/in/f', 'w').write('x')\n"
        "    os.chmod('locked/in', 0)\n"
        "    os.chmod('locked', 0)\n"
        "    return {'x': 10 * len(seen) + written}\n"
    )
    ev = evaluator_for(toy_problem, concurrency=1)
    try:
        results = [await ev.evaluate(cache) for _ in range(3)]
        slot_dir = ev._slots._slots[0].directory
        # the working directory's parent on the host: the slot's folder, or with root's scratch
        # mount under bubblewrap its tmp folder (the sandbox's /tmp)
        parents = [slot_dir, *[p for p in [slot_dir / "tmp"] if p.is_dir()]]
        leftovers = sorted(p.name for parent in parents for p in parent.iterdir())
    finally:
        await ev.aclose()
    assert ev.isolation is not None and ev.isolation.kind == "bwrap"
    # Every candidate could write both (as its own user, or as the sandbox uid) and saw nothing.
    assert [r.metrics for r in results] == [{"score": 2.0}] * 3, results
    # nothing renamed aside: the locked directories were opened up and removed
    assert not [name for name in leftovers if "stale" in name], leftovers


_PEAK_RSS_SCRIPT = """
import asyncio, json, resource, sys
from evaluators.local import LocalEvaluator
from evolve.config import EvaluatorConfig
from evolve.problem import load_problem

async def main():
    ev = LocalEvaluator(load_problem(sys.argv[1]), EvaluatorConfig(concurrency=1))
    try:
        result = await ev.evaluate(sys.argv[2])
    finally:
        await ev.aclose()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"status": result.status, "error": result.error and result.error.message, "peak_mb": peak_mb}))

asyncio.run(main())
"""


def _evaluate_in_a_fresh_process(problem: Problem, code: str, tmp_path: Path) -> dict[str, Any]:
    script = tmp_path / "peak.py"
    script.write_text(_PEAK_RSS_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), str(problem.root), code],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    reply: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return reply


def test_a_huge_report_costs_the_evaluator_little_memory(
    make_problem: Callable[..., Problem], tmp_path: Path
) -> None:
    # 60 MB of JSON: held and decoded, it would take the evaluator's memory up by hundreds of
    # megabytes. Cut at the problem's report limit, it is a bad_output that costs little.
    problem = make_problem(limits={"memory_mb": 1024, "max_report_kb": 64, "timeout_s": 10})
    small = _evaluate_in_a_fresh_process(problem, "def run():\n    return {'x': 1}\n", tmp_path)
    huge = "def run():\n    return {'x': 1, 'pad': 'x' * (60 * 2**20)}\n"
    big = _evaluate_in_a_fresh_process(problem, huge, tmp_path)
    assert small["status"] == "evaluated"
    assert big["status"] == "bad_output" and "larger than 64 KB" in big["error"]
    growth = big["peak_mb"] - small["peak_mb"]
    assert growth < 20, f"the evaluator grew by {growth:.0f} MB"


@pytest.mark.parametrize("mode", ["warm", "cold"])
async def test_a_reply_too_large_for_one_message_arrives_whole(
    make_problem: Callable[..., Problem], evaluator_for: Callable[..., LocalEvaluator], mode: str
) -> None:
    # A report of megabytes and 64 KiB of output: the supervisor's reply travels in a memfd
    # (and the report is decoded off the event loop).
    code = (
        "def run():\n"
        "    print('first line')\n"
        "    print('y' * 200_000)\n"
        "    print('last line')\n"
        "    return {'x': 7, 'pad': list(range(300_000))}\n"
    )
    problem = make_problem(limits={"max_report_kb": 4096})
    ev = evaluator_for(problem, mode=mode)
    try:
        result = await ev.evaluate(code)
    finally:
        await ev.aclose()
    assert (result.status, result.metrics) == (Status.EVALUATED, {"score": 7.0}), result.error
    assert result.stdout_tail.startswith("first line\n")
    assert result.stdout_tail.endswith("last line\n")
    assert "bytes of output truncated" in result.stdout_tail


async def test_slow_scorer_is_cut_at_its_timeout(
    toy_problem: Problem, evaluator_for: Callable[..., LocalEvaluator]
) -> None:
    ev = evaluator_for(toy_problem, scorer_timeout_s=0.5)
    try:
        slow = await ev.evaluate("def run():\n    return {'x': 1, 'sleep': 30}\n")
        after = await ev.evaluate("def run():\n    return {'x': 5}\n")
    finally:
        await ev.aclose()
    assert slow.status is Status.BAD_OUTPUT
    assert slow.error is not None and "scorer took longer than 0.5 s" in slow.error.message
    assert after.metrics == {"score": 5.0}


async def test_broken_scorer_is_a_user_error_not_a_candidate_failure(
    make_problem: Callable[..., Problem], evaluator_for: Callable[..., LocalEvaluator]
) -> None:
    problem = make_problem()
    (problem.root / "scorer.py").write_text("def score(output:\n")
    ev = evaluator_for(problem)
    try:
        with pytest.raises(ScorerLoadError, match="cannot load the scorer"):
            await ev.evaluate(problem.initial_code)
    finally:
        await ev.aclose()


def _present(paths: list[Path]) -> list[Path]:
    return [p for p in paths if os.path.lexists(p)]


async def test_slot_folders_of_killed_runs_are_swept_at_start(
    toy_problem: Problem, evaluator_for: Callable[..., LocalEvaluator]
) -> None:
    # An evolve killed with SIGKILL leaves its slot folders (with whatever its candidates
    # wrote, locked or not); the next evaluator removes them, and never a live run's.
    ended = await asyncio.create_subprocess_exec("true")
    await ended.wait()
    stale = Path(tempfile.mkdtemp(prefix=f"evolve-slot0-{ended.pid}-"))
    locked = stale / "work" / "locked"
    locked.mkdir(parents=True)
    (locked / "f").write_text("x")
    locked.chmod(0)
    live = Path(tempfile.mkdtemp(prefix=f"evolve-slot0-{os.getpid()}-"))
    ev = evaluator_for(toy_problem)
    try:
        assert (await ev.evaluate("def run():\n    return {'x': 2}\n")).metrics == {"score": 2.0}
        assert _present([stale, live]) == [live]
    finally:
        await ev.aclose()
        os.rmdir(live)


async def test_memory_is_limited_per_candidate_not_per_process(
    make_problem: Callable[..., Problem], evaluator_for: Callable[..., LocalEvaluator]
) -> None:
    # Four children of 300 MB each stay under a 512 MB limit per process, not together.
    problem = make_problem(limits={"memory_mb": 512, "timeout_s": 20})
    code = (
        "import os, time\n"
        "def run():\n"
        "    kids = []\n"
        "    for _ in range(4):\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n"
        "            block = bytearray(300 * 2**20)\n"
        "            for i in range(0, len(block), 4096):\n"
        "                block[i] = 1\n"
        "            time.sleep(3)\n"
        "            os._exit(0)\n"
        "        kids.append(pid)\n"
        "    killed = sum(os.waitpid(pid, 0)[1] != 0 for pid in kids)\n"
        "    return {'x': killed}\n"
    )
    ev = evaluator_for(problem, concurrency=1)
    try:
        result = await ev.evaluate(code)
        held = ev._slots._slots[0].memory is not None
    finally:
        await ev.aclose()
    if not held:  # no memory cgroup here (not root, or none delegated): the warning says so
        assert result.metrics == {"score": 0.0}
        return
    # The kernel kills within the slot's cgroup: the candidate itself (a memory failure) or
    # its children (which it sees, and reports).
    assert result.status is Status.MEMORY or result.metrics["score"] > 0, result
