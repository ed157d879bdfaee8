"""Helpers for the web UI tests: start `evolve ui` as a user does, read what it serves, read the
run's database directly to check what is shown."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EVOLVE = [sys.executable, "-m", "evolve.cli"]


def evolve(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EVOLVE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


@dataclass
class Served:
    """`evolve ui` running: its URL (as it printed it) and process."""

    url: str
    proc: subprocess.Popen[str]

    @property
    def base(self) -> str:
        return self.url.split("?", 1)[0].rstrip("/")

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.base + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def json(self, path: str) -> Any:
        status, _, body = self.get(path)
        assert status == 200, (path, status, body[:300])
        return json.loads(body)


def start_ui(*args: str, cwd: Path) -> Served:
    """Start `evolve ui ARGS` on a free port; its first stderr line names the URL."""
    proc = subprocess.Popen(
        [*EVOLVE, "ui", "--port", "0", *args], cwd=cwd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
        text=True, start_new_session=True,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    if "serving http" not in line:
        proc.kill()
        raise AssertionError(f"evolve ui did not start: {line}{proc.stderr.read()}")
    return Served(url=line.split("serving ", 1)[1].split()[0], proc=proc)


def stop_ui(served: Served) -> None:
    os.killpg(served.proc.pid, signal.SIGINT)
    try:
        served.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(served.proc.pid, signal.SIGKILL)
        served.proc.wait()


@dataclass
class FinishedRun:
    root: Path  # the folder holding myprob/ and runs/
    run_id: str
    db: Path

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        con = sqlite3.connect(self.db)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def best(self) -> tuple[str, float]:
        """The best program (the problem minimizes energy; the earliest of equals)."""
        pid, score = self.rows(
            "select id, score from programs where status = 'evaluated' order by score asc, iteration asc limit 1"
        )[0]
        return str(pid), float(score)


