"""How fast the ``evolve`` command answers, as a user meets it (each command a fresh process,
output to a file).

Prints, for ``evolve --help``, ``problems``, ``status RUN``, ``best RUN`` and ``lineage RUN``
(on a finished 200-iteration run), the CPU time of the process (user + system) and its wall
time: the median and the largest of ``--repeat`` runs each (target: under 0.5 s of CPU). Then
the time from starting ``evolve run`` to the model server's first request (target: within
1.5 s), against the fake wire server in this process. Then a 300-iteration run end to end, its
start-up included, against a wire server answering after 500 ms with 8 calls in flight, on
the loop benchmark's problem (20 ms of CPU per evaluation): iterations per second against the
limit min(cores / 20 ms, 8 / 0.5 s) (target: at least 0.9 of it).

    python benchmarks/cli_speed.py            # everything
    python benchmarks/cli_speed.py --quick    # fewer repeats, no 300-iteration run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from evolve.testing.wire_server import FailureMix, WireServer

HERE = Path(__file__).resolve().parent
BUSY = HERE / "busy_problem"
EVOLVE = [sys.executable, "-m", "evolve.cli"]
CPU_TARGET_S = 0.5
FIRST_REQUEST_TARGET_S = 1.5


def timed(args: list[str], cwd: Path) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one ``evolve`` process, stdout to a file."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(cwd / "out.txt", "w") as out:
        proc = subprocess.run([*EVOLVE, *args], cwd=cwd, stdout=out, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"evolve {' '.join(args)} failed ({proc.returncode})")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def commands(cwd: Path, repeat: int) -> bool:
    subprocess.run([*EVOLVE, "init", "toy"], cwd=cwd, check=True, capture_output=True)
    subprocess.run([*EVOLVE, "run", "problem=toy", "max_iterations=200", "run_name=r", "progress=false"],
                   cwd=cwd, check=True, capture_output=True)
    print(f"{'command':<22}{'CPU s median':>14}{'CPU s max':>11}{'wall s median':>15}   target: CPU < {CPU_TARGET_S} s")
    met = True
    for args in (["--help"], ["problems"], ["status", "r"], ["best", "r"], ["lineage", "r"]):
        runs = [timed(args, cwd) for _ in range(repeat)]
        cpu = [c for c, _ in runs]
        wall = [w for _, w in runs]
        ok = statistics.median(cpu) < CPU_TARGET_S
        met &= ok
        print(f"{'evolve ' + ' '.join(args):<22}{statistics.median(cpu):>14.3f}{max(cpu):>11.3f}"
              f"{statistics.median(wall):>15.3f}   {'met' if ok else 'MISSED'}")
    return met


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds of process ``pid`` so far (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def first_request(cwd: Path, repeat: int) -> bool:
    """Seconds from starting ``evolve run`` (a network model) to the server's first request, and
    the CPU the ``evolve`` process had used by then (its own, the sandbox's processes not counted:
    a figure a busy machine inflates less than the wall time)."""
    times = []
    cpus = []
    for k in range(repeat):
        async with WireServer(FailureMix(edits="constant")) as server:
            t0 = time.perf_counter()
            proc = await asyncio.create_subprocess_exec(
                *EVOLVE, "run", "problem=toy", "max_iterations=4", f"run_name=first{k}", "progress=false",
                "llm=local", f"llm.base_url={server.openai_base_url}", "llm.model=bench",
                cwd=cwd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
            first = 0.0
            while not first and proc.returncode is None:  # polled: the server has no hook for it
                await asyncio.sleep(0.002)
                if server.requests:
                    first = time.perf_counter() - t0
                    cpus.append(process_cpu_s(proc.pid))
            code = await proc.wait()
            if code != 0 or not server.requests:
                raise SystemExit(f"evolve run against the wire server failed ({code})")
            times.append(first)
    ok = statistics.median(times) <= FIRST_REQUEST_TARGET_S
    print(f"first model request of evolve run: median {statistics.median(times):.2f} s, "
          f"range {min(times):.2f}-{max(times):.2f} s over {repeat} runs   "
          f"target: within {FIRST_REQUEST_TARGET_S} s: {'met' if ok else 'MISSED'}")
    known = [c for c in cpus if c is not None]
    if known:
        print(f"  CPU of the evolve process by its first request: median {statistics.median(known):.2f} s; "
              f"load average now {os.getloadavg()[0]:.2f}")
    return ok


def end_to_end(cwd: Path, iterations: int = 300, latency: float = 0.5, in_flight: int = 8) -> bool:
    server = subprocess.Popen(
        [sys.executable, "-m", "evolve.testing.wire_server", "--port", "0", "--latency", str(latency),
         "--edits", "constant"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[-1])
        t0 = time.perf_counter()
        subprocess.run(
            [*EVOLVE, "run", f"problem={BUSY}", f"max_iterations={iterations}", "run_name=e2e", "progress=false",
             "llm=local", f"llm.base_url=http://127.0.0.1:{port}/v1", "llm.model=bench",
             f"search.in_flight={in_flight}", f"llm.max_concurrency={in_flight}"],
            cwd=cwd, check=True, capture_output=True,
        )
        wall = time.perf_counter() - t0
    finally:
        server.terminate()
        server.wait()
    cores = os.cpu_count() or 1
    limit = min(cores / 0.02, in_flight / latency)
    rate = iterations / wall
    ok = rate / limit >= 0.9
    print(f"evolve run, {iterations} iterations end to end (start-up included), L={latency * 1000:.0f} ms, "
          f"{in_flight} in flight: {wall:.1f} s, {rate:.1f} it/s, limit {limit:.1f}, ratio {rate / limit:.2f}   "
          f"target: >= 0.9: {'met' if ok else 'MISSED'}; load average {os.getloadavg()[0]:.2f}")
    return ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="3 repeats, no 300-iteration run")
    ap.add_argument("--repeat", type=int, default=None, help="runs of each command (default 7, 3 with --quick)")
    ap.add_argument("--end-to-end", type=int, default=None, metavar="N",
                    help="only the 300-iteration run, N times (its start-up is what a busy machine slows most)")
    args = ap.parse_args()
    repeat = args.repeat or (3 if args.quick else 7)
    print(f"python {sys.version.split()[0]}; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        if args.end_to_end:
            results = []
            for _ in range(args.end_to_end):
                shutil.rmtree(cwd / "runs", ignore_errors=True)
                results.append(end_to_end(cwd))
            sys.exit(0 if all(results) else 1)
        met = commands(cwd, repeat)
        met &= asyncio.run(first_request(cwd, repeat))
        if not args.quick:
            met &= end_to_end(cwd)
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
