"""How fast `evolve ui` answers for a large run: a run of 10,000 programs (a tree of children,
each made by a recorded model call with a 3 kB prompt, 5% of them failed, spread over two
islands and an 8 x 8 archive), served by `evolve ui` as a user starts it.

For the run page, the lineage page and a program page the script prints the time of the HTML
and of each API call the page makes, cold (the first request) and warm (median of five), and
the page's total: its HTML then its API calls one after another (a browser makes them at once,
so this is an upper bound). With Chromium on the machine (Debian's `chromium`) and Playwright
installed, it also times a real browser from navigation to the drawn page.

    python benchmarks/ui_run_page.py             # 10,000 programs
    python benchmarks/ui_run_page.py --programs 2000
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from evolve.app import compose_config, start_run
from evolve.codehash import code_hash
from evolve.records import ErrorInfo, LLMReply, Message, Program, Status

EVOLVE = [sys.executable, "-m", "evolve.cli"]
FAILED = (Status.EXCEPTION, Status.TIMEOUT, Status.REJECTED, Status.SYNTAX_ERROR)


def prefill(root: Path, n: int) -> tuple[str, str]:
    """A finished run of ``n`` programs under ``root/runs/big``; (best id, a leaf id)."""
    subprocess.run([*EVOLVE, "init", "myprob"], cwd=root, check=True, capture_output=True)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        opened = start_run(compose_config(["problem=myprob", "run_name=big", f"max_iterations={n}"]))
    finally:
        os.chdir(cwd)
    db, base = opened.db, opened.problem.initial_code
    rng = random.Random(0)
    ids: list[str] = []
    scores: list[float | None] = []
    prompt = (Message(role="system", content="x" * 1000), Message(role="user", content="y" * 2000))
    for i in range(n + 1):
        pid = f"p{i:07d}"
        code = base + f"\n# variant {i}\n"
        alive = [k for k in range(max(0, i - 200), i) if scores[k] is not None]
        parent = rng.choice(alive) if alive else None
        status = Status.EVALUATED if i == 0 or rng.random() > 0.05 else rng.choice(FAILED)
        score = 130.0 - 15.0 * (i / n) + rng.random() * 6 if status is Status.EVALUATED else None
        cell = (rng.randrange(8), rng.randrange(8))
        pending = Program(
            id=pid, run_id="big", iteration=i, parent_id=ids[parent] if parent is not None else None,
            island=i % 2, generation=0, code=code, code_hash=code_hash(code), status=Status.PENDING,
            diff=f"--- a\n+++ b\n@@ -1 +1 @@\n-old\n+variant {i}\n",
        )
        if i == 0:
            db.add_program(pending)
        else:
            reply = LLMReply(model="bench-model", text="reply " * 50, input_tokens=800, output_tokens=120,
                             latency_s=1.0, cost_usd=0.002)
            db.add_llm_call("big", i, prompt, reply, model="bench-model", mode="diff", program=pending)
        done = pending.model_copy(update={
            "status": status, "metrics": {"energy": score, "min_distance": 0.1} if score is not None else {},
            "cell": cell if score is not None else None,
            "error": None if score is not None else ErrorInfo(kind=status, message="boom"),
        })
        db.finish_program(done, score=score)
        ids.append(pid)
        scores.append(score)
    db.set_run_status("big", "finished", f"{n} iterations")
    opened.close()
    best = min((s, k) for k, s in enumerate(scores) if s is not None)[1]
    return ids[best], ids[-1]


def timed_get(url: str) -> float:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as r:
        r.read()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--programs", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        best, _leaf = prefill(root, args.programs)
        print(f"prefilled {args.programs:,} programs in {time.perf_counter() - t0:.1f} s "
              f"({(root / 'runs' / 'big' / 'evolve.db').stat().st_size / 1e6:.0f} MB)")
        ui = subprocess.Popen([*EVOLVE, "ui", "--port", "0"], cwd=root, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
        assert ui.stderr is not None
        base = ui.stderr.readline().split("serving ", 1)[1].split()[0].rstrip("/")
        try:
            pages = {
                "run page": ["/runs/big", "/api/runs/big", "/api/runs/big/charts", "/api/runs/big/archive",
                             "/api/runs/big/models"],
                "lineage page": ["/runs/big/lineage", "/api/runs/big/lineage"],
                "programs page": ["/runs/big/programs", "/api/runs/big/programs?sort=score"],
                "program page": [f"/runs/big/programs/{best}"],
                "runs page": ["/", "/api/runs"],
            }
            print(f"{'request':<44}{'cold ms':>10}{'warm ms':>10}")
            for name, paths in pages.items():
                cold_total = warm_total = 0.0
                for path in paths:
                    cold = timed_get(base + path)
                    warm = statistics.median(timed_get(base + path) for _ in range(5))
                    cold_total += cold
                    warm_total += warm
                    print(f"  {path:<42}{cold * 1e3:>10.0f}{warm * 1e3:>10.0f}")
                print(f"{name + ', all of it':<44}{cold_total * 1e3:>10.0f}{warm_total * 1e3:>10.0f}")
            browser_times(base, best)
        finally:
            os.killpg(ui.pid, signal.SIGINT)
            ui.wait(timeout=10)


def browser_times(base: str, best: str) -> None:
    """Navigation to drawn page in headless Chromium, when it and Playwright are here."""
    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = None
    if chromium is None:
        print("(no chromium or playwright: no browser figures)")
        return
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for name, path, ready in (
            ("run page, drawn", "/runs/big", "#archive .heat a"),
            ("lineage page, drawn", "/runs/big/lineage", "#path li"),
            ("program page, drawn", f"/runs/big/programs/{best}", "#code"),
        ):
            runs = []
            for _ in range(3):
                t0 = time.perf_counter()
                page.goto(base + path)
                page.locator(ready).first.wait_for()
                runs.append(time.perf_counter() - t0)
                page.goto("about:blank")
            print(f"{name + ' (browser, median of 3)':<44}{'':>10}{statistics.median(runs) * 1e3:>10.0f}")
        browser.close()


if __name__ == "__main__":
    main()
