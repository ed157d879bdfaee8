"""Whole-loop throughput: controller + real SDK client + sandbox + database, against a model
server that answers after a fixed latency L with a valid diff.

The problem burns ~20 ms of CPU per evaluation, every candidate sandboxed. For each scenario the
script prints iterations per second, the limit min(cores / evaluation time, in-flight / L) and
the ratio, and the controller process's own CPU per iteration (event loop, SDK client, prompts,
diffs, database; the sandboxes and the model server run in other processes). A last scenario
checks that per-iteration cost stays flat as the database grows from 100 to 10,000 programs.

    python benchmarks/loop_throughput.py            # all scenarios
    python benchmarks/loop_throughput.py --quick    # fewer iterations
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from evolve.app import build_controller, start_run
from evolve.codehash import code_hash
from evolve.config import RunConfig
from evolve.controller import Progress
from evolve.database import Database
from evolve.problem import load_problem
from evolve.records import Program, Status

HERE = Path(__file__).resolve().parent
PROBLEM = HERE / "busy_problem"
EVAL_CPU_S = 0.02


@dataclass(frozen=True)
class Result:
    iterations: int
    wall_s: float
    cpu_s: float

    @property
    def rate(self) -> float:
        return self.iterations / self.wall_s

    @property
    def cpu_ms_per_iter(self) -> float:
        return 1000 * self.cpu_s / self.iterations


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "evolve.testing.wire_server", "--port", "0", "--latency", str(latency)],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline().split()[-1])
    return proc, f"http://127.0.0.1:{port}/v1"


def config(runs: Path, name: str, base_url: str, iterations: int, in_flight: int) -> RunConfig:
    return RunConfig.model_validate({
        "problem": str(PROBLEM), "runs_dir": str(runs), "run_name": name, "max_iterations": iterations,
        "progress": False, "search": {"islands": 2, "in_flight": in_flight},
        "llm": {"provider": "local", "model": "bench", "base_url": base_url, "max_concurrency": 64},
    })


async def drive(cfg: RunConfig, *, resume_db: Database | None = None) -> Result:
    """Run to completion; time from the first new iteration applied to the last one, so that
    start-up (sandbox workers, replaying a large database) is not counted per iteration."""
    if resume_db is None:
        _loc, problem, db = start_run(cfg)
    else:
        problem, db = load_problem(cfg.problem), resume_db
    marks: list[tuple[int, float, float]] = []

    def mark(p: Progress) -> None:
        marks.append((p.applied, time.perf_counter(), time.process_time()))

    controller = build_controller(run_id=cfg.run_name or "", config=cfg, problem=problem, db=db, on_progress=mark)
    try:
        await controller.run()
    finally:
        await controller.aclose()
    db.close()
    first = next(m for m in marks if m[0] > marks[0][0])  # the first iteration after start-up
    last = marks[-1]
    return Result(last[0] - first[0], last[1] - first[1], last[2] - first[2])


def prefill(cfg: RunConfig, n: int) -> Database:
    """A run whose database already holds ``n`` evaluated programs."""
    _loc, problem, db = start_run(cfg)
    run_id = cfg.run_name or ""
    base = problem.initial_code
    rows = []
    for i in range(n + 1):
        code = base.replace("[0.5, 1.5, 2.5]", f"[0.5, 1.5, {2.5 + i * 1e-6:.7f}]")
        rows.append(Program(
            id=f"pre{i:06d}", run_id=run_id, iteration=i, parent_id=None if i == 0 else "pre000000",
            island=(i - 1) % 2 if i else 0, generation=min(i, 1), code=code, code_hash=code_hash(code),
            status=Status.EVALUATED, metrics={"closeness": -0.75 - i * 1e-9},
            features={"code_length": float(len(code))}, cell=(int((len(code) - 300) / 20),),
        ))
    db.bulk_add_programs(rows, primary="closeness")
    return db


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    n = 80 if args.quick else 240
    print(f"machine: {cores} cores; evaluation burns {EVAL_CPU_S * 1000:.0f} ms CPU; every candidate sandboxed")
    print(f"{'scenario':<34}{'it/s':>8}{'limit':>8}{'ratio':>8}{'ctrl CPU ms/it':>16}")
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        for latency, in_flight in ((0.5, 8), (0.0, 8)):
            server, url = start_server(latency)
            try:
                iters = n if latency == 0 else max(60, n // 2)
                res = await drive(config(runs, f"l{latency}", url, iters, in_flight))
            finally:
                server.terminate()
                server.wait()
            limit = min(cores / EVAL_CPU_S, in_flight / latency if latency else float("inf"))
            print(f"{f'L={latency * 1000:.0f} ms, {in_flight} in flight':<34}{res.rate:>8.1f}{limit:>8.1f}"
                  f"{res.rate / limit:>8.2f}{res.cpu_ms_per_iter:>16.2f}")

        server, url = start_server(0.0)
        try:
            for size in (100, 10_000):
                cfg = config(runs, f"db{size}", url, size + 150, 8)
                t0 = time.perf_counter()
                db = prefill(cfg, size)
                fill_s = time.perf_counter() - t0
                res = await drive(cfg, resume_db=db)
                print(f"{f'{size:,} programs in the database':<34}{res.rate:>8.1f}{'':>8}{'':>8}"
                      f"{res.cpu_ms_per_iter:>16.2f}   (prefill {fill_s:.1f} s)")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    asyncio.run(main())
