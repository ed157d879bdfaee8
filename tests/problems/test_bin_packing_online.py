"""bin_packing_online: FunSearch's instances and figures, played online through the environment.

The environment (``scorer.interact``) is tested in this process against the initial program's
own skeleton running in a thread; then whole evaluations go through the sandbox, where packers
that try to see items before they are shown get nothing more than the online heuristic they are.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from evaluators.local import LocalEvaluator
from evolve.config import EvaluatorConfig
from evolve.interactive import CANDIDATE_CHANNEL, Channel
from evolve.problem import load_problem
from evolve.records import Status
from evolve.scoring import Rejected

PROBLEMS = Path(__file__).resolve().parents[2] / "problems"
PROBLEM = "bin_packing_online"
# sha256 of json.dumps of the 20 OR3 item lists in the FunSearch notebook (u500_00..u500_19).
OR3_SHA256 = "40c438852867c9cbab3087c606ad3444be6a134f501ef4d01df3798bb444b942"
BEST_FIT = {"or3_excess_pct": 5.3677932406, "weibull_excess_pct": 3.9843042560}
BEST_FIT_MEAN = 4.6760487483


@pytest.fixture(scope="module")
def scorer(load_scorer: Callable[[str], ModuleType]) -> ModuleType:
    return load_scorer(PROBLEM)


@pytest.fixture
def skeleton(tmp_path: Path) -> Iterator[ModuleType]:
    """The initial program as a module (its FunSearch skeleton, best fit)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_bp_initial", PROBLEMS / PROBLEM / "initial.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module


def play(scorer: ModuleType, candidate: Callable[[int], Any]) -> Any:
    """Run the environment here against ``candidate(fd)`` in a thread; its result or Rejected."""
    env_end, candidate_end = socket.socketpair()
    thread = threading.Thread(target=candidate, args=(candidate_end.detach(),), daemon=True)
    thread.start()
    channel = Channel(env_end)
    try:
        return scorer.interact(channel)
    finally:
        channel.close()
        thread.join(timeout=10)


def test_problem_folder_holds_funsearchs_instances(scorer: ModuleType) -> None:
    problem = load_problem(PROBLEMS / PROBLEM)
    assert problem.spec.interactive and problem.scorer_function == "interact"
    assert problem.spec.entry_kwargs == {}  # the candidate is given no item
    data = scorer.instances()
    capacity, or3 = data["or3"]
    assert capacity == 150 and len(or3) == 20
    assert hashlib.sha256(json.dumps(list(or3.values())).encode()).hexdigest() == OR3_SHA256
    capacity, weibull = data["weibull_5k"]
    assert capacity == 100 and [len(v) for v in weibull.values()] == [5000] * 5
    # FunSearch's notebook: mean L1 bound 201.2 on OR3 and 1987.8 on Weibull 5k.
    for name, mean_l1 in (("or3", 201.2), ("weibull_5k", 1987.8)):
        cap, insts = data[name]
        assert np.mean([scorer.l1_bound(v, cap) for v in insts.values()]) == pytest.approx(mean_l1)


def test_initial_program_carries_the_documented_channel() -> None:
    assert CANDIDATE_CHANNEL in (PROBLEMS / PROBLEM / "initial.py").read_text()


def test_reproduces_funsearchs_best_fit_and_first_fit(scorer: ModuleType, skeleton: ModuleType) -> None:
    metrics, feedback = play(scorer, skeleton.run)
    # FunSearch notebook: best fit OR3 212.0 bins (5.37%), Weibull 5k 2067.0 bins (3.98%).
    assert metrics["or3_bins"] == 212.0 and metrics["weibull_bins"] == 2067.0
    for key, value in BEST_FIT.items():
        assert metrics[key] == pytest.approx(value, rel=1e-9)
    assert metrics["excess_pct"] == pytest.approx(BEST_FIT_MEAN, rel=1e-9)
    assert "OR3 5.3678%" in feedback
    skeleton.priority = lambda item, bins: -np.arange(len(bins))  # first fit
    metrics, _ = play(scorer, skeleton.run)
    assert metrics["or3_excess_pct"] == pytest.approx(5.7405566600, rel=1e-9)
    assert metrics["weibull_excess_pct"] == pytest.approx(100 * (10359 - 9939) / 9939, rel=1e-9)


def _answering(answers: Callable[[int, int, int], Any]) -> Callable[[int], None]:
    """A candidate that answers item ``k`` of size ``s`` (of ``n``) with ``answers(k, s, n)``."""

    def run(fd: int) -> None:
        sock = socket.socket(fileno=fd)
        lines = sock.makefile("rb")
        n, k = 0, 0
        with sock:
            for line in lines:
                msg = json.loads(line)
                if isinstance(msg, dict):
                    n, k = msg["num_items"], 0
                    continue
                sock.sendall(json.dumps(answers(k, msg, n)).encode() + b"\n")
                k += 1

    return run


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        (lambda k, s, n: 0, r"^u500_00, item 2 \(size 67\): bin 0 has only 39 left$"),
        (lambda k, s, n: n, r"^u500_00, item 0 \(size 42\): the answer 500 is not a bin index"),
        (lambda k, s, n: -1, r"the answer -1 is not a bin index in \[0, 500\)$"),
        (lambda k, s, n: 1.0, r"the answer 1.0 is not a bin index"),
        (lambda k, s, n: True, r"the answer True is not a bin index"),
        (lambda k, s, n: "3", r"the answer '3' is not a bin index"),
    ],
)
def test_rejects_an_illegal_answer_at_its_item(
    scorer: ModuleType, answers: Callable[[int, int, int], Any], message: str
) -> None:
    with pytest.raises(Rejected, match=message):
        play(scorer, _answering(answers))


def test_rejects_a_program_that_stops_answering(scorer: ModuleType) -> None:
    def stop_after_ten(fd: int) -> None:
        sock = socket.socket(fileno=fd)
        lines = sock.makefile("rb")
        next(lines)
        for k in range(10):
            next(lines)
            sock.sendall(f"{k}\n".encode())
        sock.close()

    # Closed while the environment sends item 11, or waits for its answer.
    stopped = r"after 10 answer\(s\)$|without answering observation 11 \(it answered 10\)$"
    with pytest.raises(Rejected, match=stopped):
        play(scorer, stop_after_ten)


# Through the sandbox: the full OR3 + Weibull 5k evaluation, and packers that try to cheat.

BLOCK_START = "# EVOLVE-BLOCK-START\n"
BLOCK_END = "# EVOLVE-BLOCK-END\n"

# Walks up its callers' frames for anything that looks like the item sequence (the cheat that
# made the in-process skeleton score 0.99%: first fit decreasing on items read from a frame);
# finding none, it is best fit.
FRAME_READER = '''
import sys

def _future_items():
    frame = sys._getframe(2)
    while frame is not None:
        for value in list(frame.f_locals.values()) + list(frame.f_globals.values()):
            if isinstance(value, (list, tuple)) and len(value) >= 500 and all(
                isinstance(v, int) and not isinstance(v, bool) for v in value[:5]
            ):
                return value
        frame = frame.f_back
    return None

def priority(item, bins):
    items = _future_items()
    if items is not None:  # first fit decreasing would go here
        raise RuntimeError(f"found {len(items)} items")
    return -(bins - item)
'''

# Looks at its raw socket before every decision, without blocking, for items not yet shown;
# finding none, it is best fit.
READ_AHEAD = '''
import os, socket

def priority(item, bins):
    sock = socket.socket(fileno=os.dup(4))
    try:
        ahead = sock.recv(1 << 16, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        ahead = b""
    finally:
        sock.close()
    if ahead:
        raise RuntimeError(f"saw {ahead[:40]!r} before answering")
    return -(bins - item)
'''

# Reads the next observation itself before the current item is answered: it waits forever,
# since the environment shows nothing more until it has the answer.
PEEKING = '''
import sys

def priority(item, bins):
    channel = sys._getframe(1).f_locals["channel"]
    channel.observe()
    return -(bins - item)
'''


def with_block(block: str) -> str:
    code = (PROBLEMS / PROBLEM / "initial.py").read_text()
    head, rest = code.split(BLOCK_START)
    _, tail = rest.split(BLOCK_END)
    return head + BLOCK_START + block.lstrip("\n") + BLOCK_END + tail


@pytest.fixture
async def evaluator() -> AsyncIterator[LocalEvaluator]:
    ev = LocalEvaluator(load_problem(PROBLEMS / PROBLEM), EvaluatorConfig(concurrency=2))
    yield ev
    await ev.aclose()


async def test_full_evaluation_of_the_initial_program_takes_seconds(
    evaluator: LocalEvaluator,
) -> None:
    await evaluator.evaluate("def run(channel_fd):\n    pass\n")  # start the template and worker
    start = time.monotonic()
    result = await evaluator.evaluate(load_problem(PROBLEMS / PROBLEM).initial_code)
    elapsed = time.monotonic() - start
    assert result.status is Status.EVALUATED, result.error
    assert result.metrics["excess_pct"] == pytest.approx(BEST_FIT_MEAN, rel=1e-9)
    assert elapsed < 15.0  # about 3 s on this project's 2-core machine


async def test_packers_that_look_for_future_items_find_none(evaluator: LocalEvaluator) -> None:
    import asyncio

    frame, ahead = await asyncio.gather(
        evaluator.evaluate(with_block(FRAME_READER)), evaluator.evaluate(with_block(READ_AHEAD))
    )
    for result in (frame, ahead):
        assert result.status is Status.EVALUATED, result.error
        assert result.metrics["excess_pct"] == pytest.approx(BEST_FIT_MEAN, rel=1e-9)


async def test_a_packer_that_reads_the_next_item_first_waits_until_killed(tmp_path: Path) -> None:
    import shutil

    import yaml

    root = tmp_path / PROBLEM
    shutil.copytree(PROBLEMS / PROBLEM, root)
    raw = yaml.safe_load((root / "problem.yaml").read_text())
    raw["limits"]["timeout_s"] = 2
    (root / "problem.yaml").write_text(yaml.safe_dump(raw))
    ev = LocalEvaluator(load_problem(root), EvaluatorConfig(concurrency=1))
    try:
        start = time.monotonic()
        result = await ev.evaluate(with_block(PEEKING))
        assert result.status is Status.TIMEOUT
        assert time.monotonic() - start < 10
    finally:
        await ev.aclose()
