"""Cascade evaluation: stages run in order and a candidate stops at the first it fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from evaluators.local import LocalEvaluator
from evolve.problem import Problem
from evolve.records import Status

STAGES: list[dict[str, Any]] = [
    {"name": "quick", "entry_kwargs": {"n": 1}, "threshold": 0.5, "timeout_s": 1},
    {"name": "full", "entry_kwargs": {"n": 10}},
]

CODE = """
import time
def run(n):
    if n > 1 and SLOW_ON_FULL:
        time.sleep(30)
    return {'x': SCORE * n}
"""


def _code(score: float, slow_on_full: bool = False) -> str:
    return f"SCORE = {score}\nSLOW_ON_FULL = {slow_on_full}\n" + CODE


async def test_candidate_passing_every_stage_gets_the_last_stage_metrics(
    make_problem: Callable[..., Problem], evaluator_for: Callable[..., LocalEvaluator]
) -> None:
    ev = evaluator_for(make_problem(stages=STAGES))
    try:
        result = await ev.evaluate(_code(1.0))
    finally:
        await ev.aclose()
    assert result.status is Status.EVALUATED
    assert result.metrics == {"score": 10.0}


async def test_candidate_below_a_threshold_stops_at_that_stage(
    make_problem: Callable[..., Problem], evaluator_for: Callable[..., LocalEvaluator]
) -> None:
    ev = evaluator_for(make_problem(stages=STAGES))
    try:
        result = await ev.evaluate(_code(0.1, slow_on_full=True))
    finally:
        await ev.aclose()
    assert result.status is Status.REJECTED
    assert result.error is not None
    assert result.error.stage == "quick"
    assert "below the threshold 0.5" in result.error.message
    assert result.wall_time_s < 5  # the slow full stage never ran


async def test_failure_in_a_later_stage_names_it_and_uses_its_timeout(
    make_problem: Callable[..., Problem], evaluator_for: Callable[..., LocalEvaluator]
) -> None:
    stages = [STAGES[0], {**STAGES[1], "timeout_s": 0.5}]
    ev = evaluator_for(make_problem(stages=stages))
    try:
        result = await ev.evaluate(_code(1.0, slow_on_full=True))
    finally:
        await ev.aclose()
    assert result.status is Status.TIMEOUT
    assert result.error is not None
    assert result.error.stage == "full"
    assert "0.5 s" in result.error.message


async def test_minimized_thresholds_pass_when_at_most(
    make_problem: Callable[..., Problem], evaluator_for: Callable[..., LocalEvaluator]
) -> None:
    problem = make_problem(
        stages=[{"name": "quick", "entry_kwargs": {"n": 1}, "threshold": 0.5}, STAGES[1]],
        metrics={"primary": "score", "direction": "minimize"},
    )
    ev = evaluator_for(problem)
    try:
        good = await ev.evaluate(_code(0.2))
        bad = await ev.evaluate(_code(0.9))
    finally:
        await ev.aclose()
    assert good.status is Status.EVALUATED and good.metrics == {"score": 2.0}
    assert bad.status is Status.REJECTED and bad.error is not None
    assert "above the threshold" in bad.error.message


@pytest.mark.parametrize("mode", ["warm", "cold"])
async def test_a_config_too_large_for_a_launch_message_still_reaches_the_candidate(
    make_problem: Callable[..., Problem], evaluator_for: Callable[..., LocalEvaluator], mode: str
) -> None:
    # The warm template takes a launch request inline up to 48 KiB; beyond, it is in a memfd
    # (cold runs always read their config from a file).
    stages = [{"name": "big", "entry_kwargs": {"blob": "a" * 100_000}}]
    ev = evaluator_for(make_problem(stages=stages), mode=mode)
    try:
        big = await ev.evaluate("def run(blob):\n    return {'x': len(blob)}\n")
        again = await ev.evaluate("def run(blob):\n    return {'x': 2 * len(blob)}\n")
    finally:
        await ev.aclose()
    assert (big.status, big.metrics) == (Status.EVALUATED, {"score": 100_000.0})
    assert (again.status, again.metrics) == (Status.EVALUATED, {"score": 200_000.0})
