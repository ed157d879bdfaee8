"""Shared by the CLI tests: the ``evolve`` command as a user runs it (a fresh process, output to a
pipe), and a run database written directly, with failures and a model call, in seconds."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from evolve.app import record_start
from evolve.codehash import code_hash
from evolve.database import Database
from evolve.problem import load_problem
from evolve.records import ErrorInfo, LLMReply, Message, Program, Status
from evolve.scaffold import scaffold_problem

EVOLVE = [sys.executable, "-m", "evolve.cli"]


def evolve(*args: str, cwd: Path, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EVOLVE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


TRACEBACK = 'Traceback (most recent call last):\n  File "candidate.py", line 3, in run\n    raise ValueError("boom {k}")\nValueError: boom {k}\n'


def crafted_run(cwd: Path, run_id: str) -> Path:
    """``cwd/runs/<run_id>/evolve.db``: the initial program, ten children (every third one failed
    with a traceback), and a model call with its prompt and reply behind iteration 1. The problem
    folder is ``cwd/prob``."""
    scaffold_problem(cwd / "prob")
    problem = load_problem(cwd / "prob")
    run_dir = cwd / "runs" / run_id
    run_dir.mkdir(parents=True)
    db = Database.open(f"sqlite:///{run_dir / 'evolve.db'}")
    config = {"problem": str(problem.root), "max_iterations": 10, "search": {"islands": 2}}
    db.create_run(run_id, problem=problem.name, problem_root=str(problem.root), fingerprint=problem.fingerprint,
                  config=config, seed=0)
    record_start(db, run_id, problem, ["problem=prob", f"run_name={run_id}"])
    code = problem.initial_code
    programs = [Program(id="p000", run_id=run_id, iteration=0, parent_id=None, island=0, generation=0, code=code,
                        code_hash=code_hash(code), status=Status.EVALUATED, metrics={"energy": 100.0})]
    for k in range(2, 11):
        child = code + f"\n# child {k}\n"
        failed = k % 3 == 0
        programs.append(Program(
            id=f"p{k:03d}", run_id=run_id, iteration=k, parent_id="p001" if k > 2 else "p000", island=k % 2,
            generation=2, code=child, code_hash=code_hash(child), diff=f"--- a/parent\n+++ b/child\n@@ -1 +1,2 @@\n x\n+# child {k}\n",
            status=Status.EXCEPTION if failed else Status.EVALUATED,
            metrics={} if failed else {"energy": 100.0 - k},
            error=ErrorInfo(kind=Status.EXCEPTION, message=TRACEBACK.format(k=k), stage="run") if failed else None,
        ))
    db.bulk_add_programs(programs, primary="energy")
    first = Program(id="p001", run_id=run_id, iteration=1, parent_id="p000", island=1, generation=1,
                    code=code + "\n# one\n", code_hash=code_hash(code + "\n# one\n"), status=Status.PENDING,
                    diff="--- a/parent\n+++ b/child\n@@ -1 +1,2 @@\n x\n+# one\n")
    reply = LLMReply(model="test-model", text="<<<<<<< SEARCH\nx\n=======\nx\n# one\n>>>>>>> REPLACE\n",
                     input_tokens=1234, output_tokens=56, cost_usd=0.0021)
    prompt = [Message(role="system", content="You improve programs."), Message(role="user", content="Improve this program please.")]
    db.add_llm_call(run_id, 1, prompt, reply, model="test-model", mode="diff", program=first)
    db.finish_program(first.model_copy(update={"status": Status.EVALUATED, "metrics": {"energy": 99.5}}), score=99.5)
    db.set_run_status(run_id, "finished", "10 iterations")
    db.close()
    return run_dir / "evolve.db"
