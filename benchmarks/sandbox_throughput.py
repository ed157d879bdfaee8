"""Candidates per second through the local evaluator: trivial and numpy programs, cold vs warm.

Usage: ``python benchmarks/sandbox_throughput.py [--n 40] [--isolation auto] [--concurrency 1]
[--backend local|ray]``

With ``--backend ray`` the same evaluations go through the Ray evaluator, on a Ray instance it
starts on this machine (one actor per slot, each holding the local sandbox): the difference to
the local figures is what Ray's task round trip adds per candidate.

Each figure is the full ``evaluate()`` round trip (sandbox start, candidate run, trusted scorer),
measured after one warm-up evaluation so that the sandbox probe and worker start-up are not
counted. With concurrency 1, the per-candidate time of the trivial program under the warm pool
is the evaluator's own overhead.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from evolve.app import build_evaluator
from evolve.config import EvaluatorConfig
from evolve.problem import load_problem

PROBLEM_YAML = """\
name: bench
description: throughput benchmark
metrics: {primary: score, direction: maximize}
entry: run
scorer: scorer.py:score
imports: [numpy]
limits: {timeout_s: 30, memory_mb: 1024}
"""
SCORER = "def score(output):\n    return {'score': float(output['x'])}\n"
PROGRAMS = {
    "trivial": "def run():\n    return {'x': 1.0}\n",
    "numpy": "import numpy as np\n\ndef run():\n    return {'x': float(np.arange(100).sum())}\n",
}


async def measure(root: Path, code: str, mode: str, isolation: str, n: int, conc: int, backend: str) -> float:
    """Candidates per second for ``n`` evaluations of ``code``."""
    problem = load_problem(root)
    config = EvaluatorConfig.model_validate(
        {"backend": backend, "concurrency": conc, "isolation": isolation, "mode": mode}
    )
    evaluator = build_evaluator(problem, config)
    try:
        for _ in range(conc):
            warmup = await evaluator.evaluate(code)
            assert warmup.ok, warmup
        start = time.perf_counter()
        results = await asyncio.gather(*(evaluator.evaluate(code) for _ in range(n)))
        elapsed = time.perf_counter() - start
        assert all(r.ok for r in results), [r.error for r in results if not r.ok][:1]
        isolation_used = getattr(evaluator, "isolation", None)
        kind = isolation_used.kind if isolation_used else backend
    finally:
        await evaluator.aclose()
    rate = n / elapsed
    print(f"  {mode:5s} {kind:7s} {rate:8.1f} cand/s   {1000 / rate:7.1f} ms/cand")
    return rate


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="candidates per measurement")
    parser.add_argument("--isolation", default="auto", choices=["auto", "bwrap", "process", "unsafe-unconfined"])
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="take the median of this many runs")
    parser.add_argument("--backend", default="local", choices=["local", "ray"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bench"
        root.mkdir()
        (root / "problem.yaml").write_text(PROBLEM_YAML)
        (root / "initial.py").write_text(PROGRAMS["trivial"])
        (root / "scorer.py").write_text(SCORER)
        for name, code in PROGRAMS.items():
            print(f"{name} program ({args.backend}, concurrency {args.concurrency}, n={args.n}):")
            rates = {}
            for mode in ("cold", "warm"):
                runs = [
                    await measure(root, code, mode, args.isolation, args.n, args.concurrency, args.backend)
                    for _ in range(args.repeat)
                ]
                rates[mode] = statistics.median(runs)
            print(
                f"  median: cold {rates['cold']:.1f}/s, warm {rates['warm']:.1f}/s, "
                f"warm/cold = {rates['warm'] / rates['cold']:.1f}x, "
                f"warm {1000 / rates['warm']:.1f} ms/candidate (1/throughput)"
            )


if __name__ == "__main__":
    asyncio.run(main())
