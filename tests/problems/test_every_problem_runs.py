"""Every shipped problem loads, its initial program evaluates, and a short offline run completes."""

from __future__ import annotations

from pathlib import Path

import pytest

from evolve.app import build_controller, start_run
from evolve.config import RunConfig
from evolve.paths import bundled_dir
from evolve.problem import load_problem

PROBLEMS = sorted(p.name for p in bundled_dir("problems").iterdir() if (p / "problem.yaml").is_file())


def test_the_suite_is_complete() -> None:
    expected = {
        "circle_packing", "circle_packing_32", "first_autocorrelation", "second_autocorrelation",
        "third_autocorrelation", "erdos_min_overlap", "heilbronn_triangle_11", "min_max_distance_2d_16",
        "min_max_distance_3d_14", "kissing_number_11", "cap_set_8", "bin_packing_online", "tsp_heuristic",
    }
    assert expected <= set(PROBLEMS)
    for name in PROBLEMS:
        spec = load_problem(name).spec
        assert spec.best_known is not None and spec.best_known.source


@pytest.mark.parametrize("name", PROBLEMS)
async def test_short_offline_run(name: str, tmp_path: Path) -> None:
    config = RunConfig.model_validate({
        "problem": name, "runs_dir": str(tmp_path), "run_name": name, "max_iterations": 4,
        "progress": False, "evaluator": {"concurrency": 2},
    })
    opened = start_run(config)
    problem, db = opened.problem, opened.db
    controller = build_controller(run_id=name, config=config, problem=problem, db=db)
    try:
        summary = await controller.run()
    finally:
        await controller.aclose()
    assert summary.status == "finished" and summary.initial_score is not None
    assert len(db.programs(name)) == 5
    db.close()
