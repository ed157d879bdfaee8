"""Interactive evaluation: a candidate in the sandbox plays against a trusted environment.

The echo fixture's environment shows 50 hidden numbers one at a time and wants each doubled.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from evaluators.interactive import LINGER_S
from evaluators.local import LocalEvaluator
from evolve.config import EvaluatorConfig
from evolve.interactive import CANDIDATE_CHANNEL
from evolve.problem import Problem, load_problem
from evolve.records import Status

ECHO = Path(__file__).parent / "fixtures" / "echo"
TIMEOUT_S = 3.0  # the fixture's wall-time limit


@pytest.fixture
async def echo() -> AsyncIterator[LocalEvaluator]:
    ev = LocalEvaluator(load_problem(ECHO), EvaluatorConfig(concurrency=2))
    yield ev
    await ev.aclose()


def program(body: str) -> str:
    """A candidate: the standard channel class, then ``body`` (which defines ``run``)."""
    return CANDIDATE_CHANNEL + "\n\n" + body


HONEST = program(
    "def run(channel_fd):\n"
    "    channel = Channel(channel_fd)\n"
    "    while (n := channel.observe()) is not None:\n"
    "        channel.answer(2 * n)\n"
)


async def test_initial_program_plays_the_whole_episode(echo: LocalEvaluator) -> None:
    problem = load_problem(ECHO)
    assert CANDIDATE_CHANNEL in problem.initial_code  # the documented class, verbatim
    result = await echo.evaluate(problem.initial_code)
    assert result.status is Status.EVALUATED, result.error
    # The environment's worker is not dumpable: no same-user candidate reads its memory.
    assert result.metrics == {"score": 50.0, "steps": 50.0, "dumpable": 0.0}
    assert result.feedback == "50 of 50 doubled"


async def test_candidate_never_holds_an_observation_it_was_not_shown(echo: LocalEvaluator) -> None:
    # Before each answer the candidate looks at everything waiting on its socket, raw and
    # without blocking: only the observation it was just shown is ever there.
    code = program(
        "import socket\n"
        "def run(channel_fd):\n"
        "    sock = socket.socket(fileno=channel_fd)\n"
        "    waiting = []\n"
        "    buf = b''\n"
        "    while True:\n"
        "        while b'\\n' not in buf:\n"
        "            chunk = sock.recv(65536)\n"
        "            if not chunk:\n"
        "                print('max waiting', max(waiting))\n"
        "                return\n"
        "            buf += chunk\n"
        "        line, _, buf = buf.partition(b'\\n')\n"
        "        try:\n"
        "            extra = sock.recv(65536, socket.MSG_PEEK | socket.MSG_DONTWAIT)\n"
        "        except BlockingIOError:\n"
        "            extra = b''\n"
        "        waiting.append(len(buf) + len(extra))\n"
        "        sock.sendall(str(2 * int(line)).encode() + b'\\n')\n"
    )
    result = await echo.evaluate(code)
    assert result.status is Status.EVALUATED, result.error
    assert result.metrics["score"] == 50.0
    assert "max waiting 0" in result.stdout_tail


async def test_reading_ahead_blocks_until_the_time_limit(echo: LocalEvaluator) -> None:
    # Asking for the next observation before answering the current one gets nothing: the
    # environment waits for the answer, the candidate for the observation, and the wall-time
    # limit ends the run.
    code = program(
        "def run(channel_fd):\n"
        "    channel = Channel(channel_fd)\n"
        "    first = channel.observe()\n"
        "    second = channel.observe()\n"
        "    channel.answer(2 * first)\n"
    )
    start = time.monotonic()
    result = await echo.evaluate(code)
    assert result.status is Status.TIMEOUT
    assert time.monotonic() - start < TIMEOUT_S + 4


async def test_a_program_that_fails_mid_episode_is_reported_as_its_failure(
    echo: LocalEvaluator,
) -> None:
    code = program(
        "def run(channel_fd):\n"
        "    channel = Channel(channel_fd)\n"
        "    for _ in range(10):\n"
        "        channel.answer(2 * channel.observe())\n"
        "    raise ValueError('tired')\n"
    )
    start = time.monotonic()
    result = await echo.evaluate(code)
    assert result.status is Status.EXCEPTION
    assert result.error is not None and "tired" in result.error.message
    assert time.monotonic() - start < TIMEOUT_S + 3  # not the episode's own 60 s and more


async def test_a_program_that_returns_early_is_rejected_by_the_environment(
    echo: LocalEvaluator,
) -> None:
    code = program(
        "def run(channel_fd):\n"
        "    channel = Channel(channel_fd)\n"
        "    channel.answer(2 * channel.observe())\n"
    )
    result = await echo.evaluate(code)
    assert result.status is Status.REJECTED
    assert result.error is not None
    assert result.error.message == "the program ended without answering observation 2 (it answered 1)"


async def test_a_descendant_holding_the_channel_dies_with_the_run(echo: LocalEvaluator) -> None:
    # The program leaves a child process with its end of the channel open and returns: the
    # run's tree is killed, so the environment reads end of file at once, not at a timeout.
    code = program(
        "import os, time\n"
        "def run(channel_fd):\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(60)\n"
        "        os._exit(0)\n"
        "    return None\n"
    )
    start = time.monotonic()
    result = await echo.evaluate(code)
    assert result.status is Status.REJECTED
    assert result.error is not None and "without answering observation 1" in result.error.message
    assert time.monotonic() - start < TIMEOUT_S + 3  # the child would hold it for 60 s


async def test_a_program_lingering_after_its_episode_is_killed(echo: LocalEvaluator) -> None:
    code = program(
        "import time\n"
        "def run(channel_fd):\n"
        "    channel = Channel(channel_fd)\n"
        "    while (n := channel.observe()) is not None:\n"
        "        channel.answer(2 * n)\n"
        "    time.sleep(60)\n"
    )
    start = time.monotonic()
    result = await echo.evaluate(code)
    assert result.status is Status.EVALUATED, result.error
    assert result.metrics["score"] == 50.0
    assert time.monotonic() - start < LINGER_S + 4  # not the program's 60 s sleep


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("b'not json\\n'", "the answer to observation 1 is not one JSON line"),
        ("b'7' * (2 << 20) + b'\\n'", "the answer to observation 1 is longer than 1048576 bytes"),
        ("b'\"give up\"\\n'", "the program gave up after 1 answers"),
    ],
)
async def test_hostile_answers_are_rejected(echo: LocalEvaluator, answer: str, message: str) -> None:
    code = program(
        "import socket\n"
        "def run(channel_fd):\n"
        "    sock = socket.socket(fileno=channel_fd)\n"
        "    sock.recv(100)\n"
        f"    sock.sendall({answer})\n"
        "    sock.recv(100)\n"
    )
    result = await echo.evaluate(code)
    assert result.status is Status.REJECTED
    assert result.error is not None and result.error.message.startswith(message)


async def test_an_environment_that_breaks_is_a_scorer_failure(echo: LocalEvaluator) -> None:
    code = program(
        "def run(channel_fd):\n"
        "    channel = Channel(channel_fd)\n"
        "    channel.observe()\n"
        "    channel.answer('crash')\n"
        "    channel.observe()\n"
    )
    result = await echo.evaluate(code)
    assert result.status is Status.SCORER_ERROR  # the trusted environment's bug, with its traceback
    assert result.error is not None
    assert result.error.message.startswith("the scorer raised RuntimeError: the environment broke\n")
    assert "Traceback (most recent call last)" in result.error.message


async def test_episodes_run_concurrently_and_in_turn(echo: LocalEvaluator) -> None:
    import asyncio

    results = await asyncio.gather(*(echo.evaluate(HONEST) for _ in range(5)))
    assert [r.metrics.get("score") for r in results] == [50.0] * 5


async def test_an_environment_that_cannot_load_is_a_user_error(
    tmp_path: Path, make_echo: Callable[[str], Problem]
) -> None:
    from evaluators.workers import ScorerLoadError

    ev = LocalEvaluator(make_echo("raise ImportError('no such module')\n"), EvaluatorConfig())
    try:
        with pytest.raises(ScorerLoadError, match="cannot load the environment: ImportError"):
            await ev.evaluate(HONEST)
    finally:
        await ev.aclose()


@pytest.fixture
def make_echo(tmp_path: Path) -> Callable[[str], Problem]:
    """The echo problem with ``prefix`` put before its environment's code."""

    def make(prefix: str) -> Problem:
        import shutil

        root = tmp_path / "echo"
        shutil.copytree(ECHO, root)
        env = root / "environment.py"
        env.write_text(prefix + env.read_text())
        return load_problem(root)

    return make


def test_init_interactive_scaffolds_a_problem_that_evaluates_and_runs(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    def evolve(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "evolve.cli", *args],
            cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )

    init = evolve("init", "--interactive", "sec")
    assert init.returncode == 0, init.stderr
    assert "environment.py" in init.stderr
    assert load_problem(tmp_path / "sec").spec.interactive
    assert CANDIDATE_CHANNEL in (tmp_path / "sec" / "initial.py").read_text()
    ev = evolve("eval", "problem=sec", "sec/initial.py")
    assert ev.returncode == 0, ev.stderr
    result = json.loads(ev.stdout)
    assert result["status"] == "evaluated", result
    assert 0.3 < result["metrics"]["success_rate"] < 0.45  # the 1/e rule: about 0.37
    run = evolve("run", "problem=sec", "max_iterations=4", "evaluator.concurrency=2")
    assert run.returncode == 0, run.stderr


async def test_cancelling_an_evaluation_ends_the_episode_and_the_pool_goes_on(
    echo: LocalEvaluator,
) -> None:
    import asyncio
    import uuid

    from tests.evaluators.processes import marked_pids, wait_marked

    marker = f"evtest-{uuid.uuid4().hex[:6]}"
    stuck = program(
        "import subprocess, sys, time\n"
        "def run(channel_fd):\n"
        "    Channel(channel_fd).observe()\n"
        f"    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', '{marker}'])\n"
        "    time.sleep(60)\n"
    )
    task = asyncio.ensure_future(echo.evaluate(stuck))
    assert await wait_marked(marker, count=1, within_s=3.0)  # mid-episode, with a child
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_marked(marker, count=0, within_s=1.0), marked_pids(marker)
    start = time.monotonic()
    result = await echo.evaluate(HONEST)
    assert result.status is Status.EVALUATED, result.error
    assert result.metrics["score"] == 50.0
    assert time.monotonic() - start < TIMEOUT_S


async def test_a_dead_idle_environment_worker_is_replaced(echo: LocalEvaluator) -> None:
    import os
    import signal

    assert (await echo.evaluate(HONEST)).metrics["score"] == 50.0
    pool = echo._episodes
    assert pool is not None and pool._idle
    for worker in pool._idle:
        os.killpg(worker.proc.pid, signal.SIGKILL)
        await worker.proc.wait()
    result = await echo.evaluate(HONEST)
    assert result.status is Status.EVALUATED, result.error
    assert result.metrics["score"] == 50.0
