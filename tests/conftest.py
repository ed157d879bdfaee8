"""Shared fixtures: a seeded rng, a fresh database, a toy problem, a scripted fake LLM, a fake
in-process evaluator."""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from evolve.database import Database
from evolve.problem import Problem, load_problem
from evolve.records import ErrorInfo, EvalResult, LLMReply, LLMRequest, Status
from evolve.scaffold import scaffold_problem
from tests.evaluators.processes import suite_processes


@pytest.fixture(scope="session", autouse=True)
def no_stray_processes() -> Iterator[None]:
    """After the whole suite, nothing it started may still be running."""
    before = set(suite_processes())
    yield
    deadline = time.monotonic() + 3.0
    left = [p for p in suite_processes() if p not in before]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in suite_processes() if p not in before]
    assert not left, "processes left behind by the test suite:\n" + "\n".join(left)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(f"sqlite:///{tmp_path / 'test.db'}")
    yield database
    database.close()


@pytest.fixture
def toy_dir(tmp_path: Path) -> Path:
    """The problem `evolve init` scaffolds: 12 points in a square, maximize the min distance."""
    folder = tmp_path / "toy"
    scaffold_problem(folder)
    return folder


@pytest.fixture
def toy(toy_dir: Path) -> Problem:
    return load_problem(toy_dir)


class ScriptedLLM:
    """Replies from a script (cycled) and records every request it saw."""

    def __init__(self, replies: list[str], name: str = "scripted") -> None:
        self.replies = replies
        self.requests: list[LLMRequest] = []
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    async def complete(self, request: LLMRequest) -> LLMReply:
        self.requests.append(request)
        text = self.replies[(len(self.requests) - 1) % len(self.replies)]
        return LLMReply(model=self._name, text=text, input_tokens=10, output_tokens=5)

    async def aclose(self) -> None:
        return None


@pytest.fixture
def scripted() -> type[ScriptedLLM]:
    return ScriptedLLM


class FakeEvaluator:
    """Scores code in-process in microseconds, deterministically from its text: no sandbox.

    For search and scheduling tests (never for untrusted code). ``metrics`` maps code to the
    metrics; the default spreads a hash of the code over the toy problem's metrics.
    """

    def __init__(self, metrics: Callable[[str], dict[str, float] | None] | None = None) -> None:
        self._metrics = metrics or fake_metrics
        self.calls: list[str] = []

    async def evaluate(self, code: str) -> EvalResult:
        self.calls.append(code)
        metrics = self._metrics(code)
        if metrics is None:
            return EvalResult(status=Status.EXCEPTION, error=ErrorInfo(kind=Status.EXCEPTION, message="boom"))
        return EvalResult(status=Status.EVALUATED, metrics=metrics)

    async def aclose(self) -> None:
        return None


def fake_metrics(code: str) -> dict[str, float]:
    """Toy-problem metrics drawn from a hash of ``code``."""
    h = int.from_bytes(hashlib.sha256(code.encode()).digest()[:8], "big")
    return {"energy": 50.0 + (h % 10_000) / 100.0, "min_distance": ((h >> 20) % 1000) / 2000.0}


@pytest.fixture
def fake_evaluator() -> type[FakeEvaluator]:
    return FakeEvaluator


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server on 127.0.0.1 for the tests of one module; its URL."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("PostgreSQL server binaries are not installed (.ci/run installs Debian's postgresql)")
    bindir = Path(bins[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="evolve-pg-"))  # not under pytest's 0700 tmp: the server user reads it
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        root.chmod(0o755)
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "evolve"],
                   check=True, capture_output=True)
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-w", "-l", str(root / "log"), "start"],
                   check=True, capture_output=True)
    try:
        subprocess.run([*as_user, str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "evolve", "evolve"],
                       check=True, capture_output=True)
        yield f"postgresql+psycopg://evolve@127.0.0.1:{port}/evolve"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
