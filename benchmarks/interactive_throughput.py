"""Interactive evaluation: the cost of a step, and of a whole bin_packing_online evaluation.

Usage: ``python benchmarks/interactive_throughput.py [--n 5] [--steps 20000] [--isolation auto]``

Two figures, each through the local evaluator's full ``evaluate()`` (sandbox, candidate, trusted
environment worker), measured after one warm-up evaluation so that the sandbox probe and the
worker start-up are not counted:

- ``echo``: an environment that asks ``--steps`` questions, each answered at once; the time per
  step is the channel's round trip (two JSON lines between two processes);
- ``bin_packing_online``: the shipped problem's initial program (FunSearch's skeleton, best
  fit) on FunSearch's OR3 and Weibull 5k, 35,000 items.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from evaluators.local import LocalEvaluator
from evolve.config import EvaluatorConfig
from evolve.interactive import CANDIDATE_CHANNEL
from evolve.paths import bundled_dir
from evolve.problem import Problem, load_problem

ECHO_YAML = """\
name: echo_bench
description: interactive round-trip benchmark
metrics: {primary: steps, direction: maximize}
entry: run
scorer: environment.py:interact
interactive: true
limits: {timeout_s: 120, memory_mb: 1024}
"""
ECHO_ENV = """\
def interact(channel, entry_kwargs):
    for k in range(entry_kwargs["steps"]):
        if channel.ask(k) != k:
            raise ValueError("wrong echo")
    return {"steps": float(channel.steps)}
"""
ECHO_PROGRAM = CANDIDATE_CHANNEL + """

def run(channel_fd, steps):
    channel = Channel(channel_fd)
    while (k := channel.observe()) is not None:
        channel.answer(k)
"""


async def timed(problem: Problem, code: str, n: int, isolation: str) -> list[float]:
    evaluator = LocalEvaluator(problem, EvaluatorConfig(concurrency=1, isolation=isolation))
    try:
        first = await evaluator.evaluate(code)
        if first.status.value != "evaluated":
            raise SystemExit(f"{problem.name}: {first.status.value}: {first.error}")
        times = []
        for _ in range(n):
            start = time.perf_counter()
            await evaluator.evaluate(code)
            times.append(time.perf_counter() - start)
        return times
    finally:
        await evaluator.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5, help="timed evaluations per figure")
    parser.add_argument("--steps", type=int, default=20000, help="questions in the echo episode")
    parser.add_argument("--isolation", default="auto", choices=["auto", "bwrap", "process"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "echo_bench"
        root.mkdir()
        (root / "problem.yaml").write_text(ECHO_YAML + f"entry_kwargs: {{steps: {args.steps}}}\n")
        (root / "environment.py").write_text(ECHO_ENV)
        (root / "initial.py").write_text(ECHO_PROGRAM)
        echo = await timed(load_problem(root), ECHO_PROGRAM, args.n, args.isolation)
    packing = load_problem(bundled_dir("problems") / "bin_packing_online")
    bins = await timed(packing, packing.initial_code, args.n, args.isolation)
    med = statistics.median
    print(f"echo, {args.steps} steps: median {med(echo):.2f} s per evaluation "
          f"({min(echo):.2f}-{max(echo):.2f}), {1e6 * med(echo) / args.steps:.0f} us per step")
    print(f"bin_packing_online, best fit, 35000 items: median {med(bins):.2f} s per evaluation "
          f"({min(bins):.2f}-{max(bins):.2f}), {1e6 * med(bins) / 35000:.0f} us per item")


if __name__ == "__main__":
    asyncio.run(main())
