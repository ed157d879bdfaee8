"""The local evaluator end to end: each status, the environment, the result channel, killing."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from evaluators.local import LocalEvaluator
from evolve.problem import Problem
from evolve.records import Status
from tests.evaluators.conftest import pid_alive, wait_dead


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


async def test_scorer_crash_is_bad_output(evaluator: LocalEvaluator) -> None:
    result = await evaluator.evaluate("def run():\n    return {'crash': 1}\n")
    assert result.status is Status.BAD_OUTPUT
    assert result.error is not None and "the scorer crashed" in result.error.message


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


async def test_timeout_kills_whole_process_tree(
    make_problem: Callable[..., Problem],
    evaluator_for: Callable[..., LocalEvaluator],
    shared_dir: Path,
) -> None:
    ev = evaluator_for(make_problem(limits={"timeout_s": 1}))
    code = (
        "import subprocess, time\n"
        "def run():\n"
        "    p = subprocess.Popen(['sleep', '60'])\n"
        f"    open({str(shared_dir / 'pid')!r}, 'w').write(str(p.pid))\n"
        "    time.sleep(60)\n"
    )
    try:
        result = await ev.evaluate(code)
    finally:
        await ev.aclose()
    assert result.status is Status.TIMEOUT
    pid = int((shared_dir / "pid").read_text())
    assert await wait_dead(pid)


async def test_cancelling_evaluate_kills_the_candidate(
    evaluator: LocalEvaluator, shared_dir: Path
) -> None:
    pid_file = shared_dir / "pid"
    code = (
        "import os, time\n"
        "def run():\n"
        f"    open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "    time.sleep(60)\n"
    )
    task = asyncio.create_task(evaluator.evaluate(code))
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text():
            break
        await asyncio.sleep(0.02)
    pid = int(pid_file.read_text())
    assert pid_alive(pid)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_dead(pid)


async def test_concurrency_is_bounded(
    toy_problem: Problem, evaluator_for: Callable[..., LocalEvaluator], shared_dir: Path
) -> None:
    ev = evaluator_for(toy_problem, concurrency=2)
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
