"""Whole-loop throughput: controller + real SDK client + sandbox + database, against a model
server that answers after a fixed latency L with a valid diff.

The model server is the fake wire server with ``--edits constant``: each reply nudges one
constant of the parent's EVOLVE block (a new value each time, so no child is a duplicate that
would skip its evaluation). It costs next to no CPU beyond HTTP and JSON, as a real model's
server, running on other machines, costs this one nothing; its CPU is printed all the same.

The problem burns ~20 ms of CPU per evaluation, every candidate sandboxed. For each scenario the
script prints iterations per second, the limit min(cores / evaluation time, in-flight / L) and
the ratio, and the controller process's own CPU per iteration (event loop, SDK client, prompts,
diffs, database; the sandboxes and the model server run in other processes). For the latency
scenarios it also prints the whole machine's busy CPU per iteration (which is what bounds L = 0:
the evaluation's 20 ms, the sandbox processes, the server and the controller all share the
cores), the share of the cores' time that was busy, and the fake model server's share of the
CPU (Linux). ``--concurrency`` sets how many candidates run at once (default: the cores). A
scenario checks that per-iteration
cost stays flat as the database grows from 100 to 10,000 programs. Last, the pieces of the
controller's CPU are measured one at a time, with nothing else running: a model call through the
SDK with eight in flight (over its aiohttp transport, the default, and over its httpx one), the
controller's side of one sandboxed evaluation, and one iteration's database writes.
Under load the same work costs more CPU (the evaluations share the cores and the caches), so the
pieces add up to less than the whole.

    python benchmarks/loop_throughput.py            # all scenarios, each 3 times
    python benchmarks/loop_throughput.py --quick    # fewer iterations, each scenario once

A machine's speed drifts (a shared VM by 20-50% over minutes), and its cores need not run at
one speed (here one core ran the same workload 1.8x slower than the other for minutes), so each
scenario
runs ``--repeat`` times and the table shows each figure's median over the runs, then the range.
A fixed pure-Python reference workload is timed on every core before and after every run: "ref
ms" is its mean time, "skew" the slowest core's time over the fastest's (the drift within a run
it cannot see). The header names the interpreter and the reference's time on each core at the
start.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path

from evaluators.local import LocalEvaluator
from evolve.app import build_controller, start_run
from evolve.codehash import code_hash
from evolve.config import RunConfig
from evolve.controller import Progress
from evolve.database import Database
from evolve.llm.factory import build_llm
from evolve.problem import Problem, load_problem
from evolve.prompts import PromptBuilder, PromptContext
from evolve.records import LLMReply, LLMRequest, Program, Status

HERE = Path(__file__).resolve().parent
PROBLEM = HERE / "busy_problem"
EVAL_CPU_S = 0.02


@dataclass(frozen=True)
class Result:
    iterations: int
    wall_s: float
    cpu_s: float  # this process
    machine_s: float | None  # all cores, busy (Linux)
    server_s: float | None  # the model server process (Linux)
    ref_ms: float = 0.0  # the reference workload's CPU time around the run, mean over the cores
    core_skew: float = 1.0  # the slowest core's reference time over the fastest's

    @property
    def rate(self) -> float:
        return self.iterations / self.wall_s

    @property
    def cpu_ms_per_iter(self) -> float:
        return 1000 * self.cpu_s / self.iterations


def machine_busy_s() -> float | None:
    """CPU seconds the whole machine has been busy (all cores; Linux), or None."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except OSError:
        return None
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds of process ``pid`` and its reaped children (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(server_pid: int | None) -> tuple[float, float | None, float | None]:
    """CPU seconds so far: this process, the busy machine, the model server."""
    server = None if server_pid is None else process_cpu_s(server_pid)
    return time.process_time(), machine_busy_s(), server


def spent(first: float | None, last: float | None) -> float | None:
    return None if first is None or last is None else last - first


def reference_ms() -> float:
    """CPU milliseconds of a fixed workload like the controller's (JSON, code hashing, dicts
    and strings): how fast this machine runs Python at the moment."""
    payload = [{"role": "user", "content": f"{'x' * 2000} {i}"} for i in range(8)]
    code = (PROBLEM / "initial.py").read_text()
    t0 = time.process_time()
    for _ in range(200):
        json.loads(json.dumps(payload))
        code_hash(code)
        sorted({str(i): i for i in range(300)}.items())
    return 1000 * (time.process_time() - t0)


def core_speeds() -> dict[int, float]:
    """The reference workload's CPU milliseconds on each core in turn (Linux; else on whichever
    core runs it, as core -1). The cores of a shared VM need not run at one speed, and the
    controller runs on whichever core is free."""
    if not hasattr(os, "sched_setaffinity"):
        return {-1: reference_ms()}
    allowed = os.sched_getaffinity(0)
    speeds: dict[int, float] = {}
    try:
        for core in sorted(allowed):
            os.sched_setaffinity(0, {core})
            speeds[core] = reference_ms()
    finally:
        os.sched_setaffinity(0, allowed)  # before any process is started: they inherit it
    return speeds


async def timed(run: Awaitable[Result]) -> Result:
    """Await ``run`` (a :func:`drive`) with the reference workload timed on every core before
    and after: its mean over those timings, and the slowest core's time over the fastest's."""
    before = core_speeds()
    res = await run
    after = core_speeds()
    times = [*before.values(), *after.values()]
    skew = max(max(t.values()) / min(t.values()) for t in (before, after))
    return dataclasses.replace(res, ref_ms=statistics.mean(times), core_skew=skew)


@dataclass(frozen=True)
class Medians:
    """Each figure's median over the runs of one scenario (figures from different runs)."""

    rate: float
    cpu_ms: float
    machine_ms: float | None
    busy: float | None  # share of all cores' time that the machine was busy
    server_ms: float | None
    ref_ms: float
    core_skew: float


def medians(results: list[Result], cores: int) -> Medians:
    def median(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return statistics.median(known) if known else None

    return Medians(
        rate=statistics.median(r.rate for r in results),
        cpu_ms=statistics.median(r.cpu_ms_per_iter for r in results),
        machine_ms=median([None if r.machine_s is None else 1000 * r.machine_s / r.iterations for r in results]),
        busy=median([None if r.machine_s is None else r.machine_s / (r.wall_s * cores) for r in results]),
        server_ms=median([None if r.server_s is None else 1000 * r.server_s / r.iterations for r in results]),
        ref_ms=statistics.median(r.ref_ms for r in results),
        core_skew=statistics.median(r.core_skew for r in results),
    )


def shown(value: float | None, width: int, fmt: str) -> str:
    return f"{'-' if value is None else format(value, fmt):>{width}}"


def spread(results: list[Result]) -> str:
    """The range of rates and controller CPU over the runs, if more than one."""
    if len(results) < 2:
        return ""
    rates = [r.rate for r in results]
    cpu = [r.cpu_ms_per_iter for r in results]
    ref = [r.ref_ms for r in results]
    skew = [r.core_skew for r in results]
    return (f"   ({len(results)} runs: {min(rates):.1f}-{max(rates):.1f} it/s, "
            f"{min(cpu):.2f}-{max(cpu):.2f} ms/it, ref {min(ref):.0f}-{max(ref):.0f} ms, "
            f"skew {min(skew):.2f}-{max(skew):.2f})")


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "evolve.testing.wire_server",
            "--port", "0", "--latency", str(latency), "--edits", "constant",
        ],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline().split()[-1])
    return proc, f"http://127.0.0.1:{port}/v1"


def config(
    runs: Path, name: str, base_url: str, iterations: int, in_flight: int, concurrency: int | None = None
) -> RunConfig:
    return RunConfig.model_validate({
        "problem": str(PROBLEM), "runs_dir": str(runs), "run_name": name, "max_iterations": iterations,
        "progress": False, "search": {"islands": 2, "in_flight": in_flight},
        "evaluator": {"concurrency": concurrency},
        "llm": {"provider": "local", "model": "bench", "base_url": base_url, "max_concurrency": 64},
    })


async def drive(cfg: RunConfig, *, resume_db: Database | None = None, server_pid: int | None = None) -> Result:
    """Run to completion; time from the first new iteration applied to the last one, so that
    start-up (sandbox workers, replaying a large database) is not counted per iteration."""
    if resume_db is None:
        opened = start_run(cfg)
        problem, db = opened.problem, opened.db
    else:
        problem, db = load_problem(cfg.problem), resume_db
    marks: list[tuple[int, float]] = []  # (applied, wall clock) at each progress report
    cpu: dict[str, tuple[float, float | None, float | None]] = {}  # at the first and last new iteration

    def mark(p: Progress) -> None:
        marks.append((p.applied, time.perf_counter()))
        if "first" not in cpu and p.applied > marks[0][0]:
            cpu["first"] = cpu_snapshot(server_pid)
        if p.applied >= cfg.max_iterations:
            cpu["last"] = cpu_snapshot(server_pid)

    controller = build_controller(run_id=cfg.run_name or "", config=cfg, problem=problem, db=db, on_progress=mark)
    try:
        await controller.run()
    finally:
        await controller.aclose()
    db.close()
    first = next(m for m in marks if m[0] > marks[0][0])  # the first iteration after start-up
    last = marks[-1]
    (cpu0, machine0, server0), (cpu1, machine1, server1) = cpu["first"], cpu["last"]
    return Result(
        last[0] - first[0], last[1] - first[1], cpu1 - cpu0, spent(machine0, machine1), spent(server0, server1)
    )


def prefill(cfg: RunConfig, n: int) -> Database:
    """A run whose database already holds ``n`` evaluated programs."""
    opened = start_run(cfg)
    problem, db = opened.problem, opened.db
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


def sample_program(problem: Problem, run_id: str, i: int) -> Program:
    """A pending program with a distinct variant of the initial code."""
    code = problem.initial_code.replace("[0.5, 1.5, 2.5]", f"[0.5, 1.5, {2.5 + i * 1e-6:.7f}]")
    return Program(
        id=f"p{i:06d}", run_id=run_id, iteration=i, parent_id=None, island=0, generation=1, code=code,
        code_hash=code_hash(code), status=Status.PENDING,
    )


async def pieces(runs: Path, url: str, n: int) -> dict[str, float]:
    """CPU per call of each piece, alone and in sequence, in this process (ms)."""
    cfg = config(runs, "pieces", url, 1, 1)
    opened = start_run(cfg)
    problem, db = opened.problem, opened.db
    parent = sample_program(problem, "pieces", 0)
    messages = PromptBuilder(problem).render(PromptContext(parent=parent, mode="diff"))
    request = LLMRequest(messages=messages, mode="diff", parent_code=parent.code or "")
    out: dict[str, float] = {}

    for http in ("aiohttp", "httpx"):
        llm = build_llm(cfg.llm.model_copy(update={"http_client": http}), seed=0, environ=os.environ)
        try:
            # Eight calls in flight at a time, as in the loop (the pool's cost grows with them).
            replies = await asyncio.gather(*(llm.complete(request) for _ in range(8)))
            t0 = time.process_time()
            for _ in range(n // 8):
                replies = await asyncio.gather(*(llm.complete(request) for _ in range(8)))
            out[f"model call, 8 in flight (openai SDK over {http})"] = (time.process_time() - t0) / (n // 8 * 8)
        finally:
            await llm.aclose()

    evaluator = LocalEvaluator(problem, cfg.evaluator)
    try:
        for i in range(5):
            await evaluator.evaluate(sample_program(problem, "pieces", i).code or "")
        codes = [sample_program(problem, "pieces", 100 + i).code or "" for i in range(n)]
        t0 = time.process_time()
        for code in codes:
            await evaluator.evaluate(code)
        out["evaluation, controller side (supervisor request and reply, scorer)"] = (time.process_time() - t0) / n
    finally:
        await evaluator.aclose()

    programs = [sample_program(problem, "pieces", 1000 + i) for i in range(n)]
    finished = [p.model_copy(update={"status": Status.EVALUATED, "metrics": {"closeness": -0.75},
                                     "features": {"code_length": 400.0}, "cell": (5,),
                                     "timings": {"llm_s": 0.1, "eval_s": 0.05, "sandbox_s": 0.04}}) for p in programs]
    reply = LLMReply(model="bench", text=replies[0].text, input_tokens=1000, output_tokens=100)
    t0 = time.process_time()
    for p, f in zip(programs, finished, strict=True):
        db.add_llm_call("pieces", p.iteration, messages, reply, model="bench", mode="diff", program=p)
        db.finish_program(f, score=-0.75)
    out["database writes (model call + program; outcome)"] = (time.process_time() - t0) / n
    db.close()
    return {k: 1000 * v for k, v in out.items()}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations; each scenario once")
    ap.add_argument("--repeat", type=int, default=None, help="runs per scenario (default 3, 1 with --quick)")
    ap.add_argument("--concurrency", type=int, default=None, help="candidates at once (default: cores)")
    args = ap.parse_args()
    repeat = args.repeat or (1 if args.quick else 3)
    cores = os.cpu_count() or 1
    n = 80 if args.quick else 240
    print(f"machine: {cores} cores; evaluation burns {EVAL_CPU_S * 1000:.0f} ms CPU; every candidate sandboxed; "
          f"{args.concurrency or cores} at once")
    speeds = ", ".join(f"core {c}: {ms:.0f} ms" for c, ms in core_speeds().items())
    print(f"python {platform.python_version()} ({sys.executable}); reference workload now: {speeds}")
    print(f"{'scenario':<34}{'it/s':>8}{'limit':>8}{'ratio':>8}{'ctrl CPU ms/it':>16}"
          f"{'machine ms/it':>15}{'busy':>6}{'server ms/it':>14}{'ref ms':>8}{'skew':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        for latency, in_flight in ((0.5, 8), (0.0, 8)):
            results = []
            for k in range(repeat):
                server, url = start_server(latency)
                try:
                    iters = n if latency == 0 else max(60, n // 2)
                    cfg = config(runs, f"l{latency}-{k}", url, iters, in_flight, args.concurrency)
                    results.append(await timed(drive(cfg, server_pid=server.pid)))
                finally:
                    server.terminate()
                    server.wait()
            m = medians(results, cores)
            limit = min(cores / EVAL_CPU_S, in_flight / latency if latency else float("inf"))
            print(f"{f'L={latency * 1000:.0f} ms, {in_flight} in flight':<34}{m.rate:>8.1f}{limit:>8.1f}"
                  f"{m.rate / limit:>8.2f}{m.cpu_ms:>16.2f}{shown(m.machine_ms, 15, '.1f')}"
                  f"{shown(m.busy, 6, '.0%')}{shown(m.server_ms, 14, '.1f')}{m.ref_ms:>8.0f}{m.core_skew:>6.2f}"
                  f"{spread(results)}")

        server, url = start_server(0.0)
        try:
            for size in (100, 10_000):
                results, fills = [], []
                for k in range(repeat):
                    cfg = config(runs, f"db{size}-{k}", url, size + n, 8, args.concurrency)
                    t0 = time.perf_counter()
                    db = prefill(cfg, size)
                    fills.append(time.perf_counter() - t0)
                    results.append(await timed(drive(cfg, resume_db=db)))
                m = medians(results, cores)
                print(f"{f'{size:,} programs in the database':<34}{m.rate:>8.1f}{'':>8}{'':>8}"
                      f"{m.cpu_ms:>16.2f}{'':>15}{'':>6}{'':>14}{m.ref_ms:>8.0f}{m.core_skew:>6.2f}"
                      f"   (prefill {max(fills):.1f} s){spread(results)}")
            alone = await pieces(runs, url, 50 if args.quick else 200)
        finally:
            server.terminate()
            server.wait()
    print("controller CPU per call, each piece alone (ms):")
    for name, ms in alone.items():
        print(f"  {name:<64}{ms:>6.2f}")


if __name__ == "__main__":
    asyncio.run(main())
