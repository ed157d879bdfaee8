"""`evolve ui --db URL` and `evolve ctl --db URL` over a run kept in PostgreSQL (a throwaway
server on 127.0.0.1, as tests/database/test_postgres.py starts one)."""

from __future__ import annotations

from pathlib import Path

from tests.ui.harness import evolve, start_ui, stop_ui


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
