"""`evolve ui --db URL` and `evolve ctl --db URL` over a run kept in PostgreSQL (a throwaway
server on 127.0.0.1, as tests/database/test_postgres.py starts one)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ui.harness import evolve, start_ui, stop_ui


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("PostgreSQL server binaries are not installed (.ci/run installs Debian's postgresql)")
    bindir = Path(bins[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="evolve-ui-pg-"))
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


def test_ui_and_ctl_over_postgresql(postgres_url: str, tmp_path: Path) -> None:
    assert evolve("init", "myprob", cwd=tmp_path).returncode == 0
    r = evolve("run", "problem=myprob", "max_iterations=12", "run_name=pg1", f"database.url={postgres_url}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    ui = start_ui("--db", postgres_url, cwd=tmp_path)
    try:
        runs = ui.json("/api/runs")
        assert [x["id"] for x in runs] == ["pg1"] and runs[0]["iterations"] == 12
        best = ui.json("/api/runs/pg1/programs?sort=score&limit=1")["programs"][0]
        assert best["id"] == runs[0]["best_id"]
        graph = ui.json("/api/runs/pg1/lineage")
        assert graph["id"][graph["path"][-1]] == best["id"] and len(graph["id"]) == 13
        assert ui.json(f"/api/runs/pg1/programs/{best['id']}")["lineage"][-1] == best["id"]
        assert ui.get("/runs/pg1")[0] == 200 and ui.get(f"/runs/pg1/programs/{best['id']}")[0] == 200
        c = evolve("ctl", "pg1", "stop", "--db", postgres_url, cwd=tmp_path)
        assert c.returncode == 0, c.stderr
        assert [(h["kind"], h["applied_at"]) for h in ui.json("/api/runs/pg1/commands")] == [("stop", None)]
    finally:
        stop_ui(ui)
