"""Every problem states its scorer's tolerance and what the published constructions score under
it; README's scoring table and ``evolve problems`` carry those labels."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from evolve.paths import bundled_dir
from evolve.problem import load_problem

REPO = Path(__file__).resolve().parents[2]
PROBLEMS = sorted(
    p.name for p in bundled_dir("problems").iterdir() if (p / "problem.yaml").is_file()
)


def _cell(text: str | None) -> str:
    return (text or "-").replace("|", "\\|")


@pytest.mark.parametrize("name", PROBLEMS)
def test_problem_states_its_tolerance_and_what_the_published_constructions_score(name):
    spec = load_problem(name).spec
    assert spec.tolerance and spec.best_known is not None and spec.best_known.reproduced


@pytest.mark.parametrize("name", PROBLEMS)
def test_readme_scoring_table_matches_the_yaml(name):
    spec = load_problem(name).spec
    assert spec.best_known is not None
    row = (
        f"| {name} | {_cell(spec.tolerance)} | {_cell(spec.best_known.reproduced)} "
        f"| {_cell(spec.best_known.note)} |"
    )
    assert row in (REPO / "README.md").read_text()


def test_bin_packing_best_known_is_labelled_per_instance_set():
    best = load_problem("bin_packing_online").spec.best_known
    assert best is not None and best.note is not None
    assert "neither reaches it alone" in best.note
    assert "OR3" in best.note and "Weibull" in best.note


def test_problems_command_carries_the_labels(tmp_path):
    # Through the CLI, piped to a file, wide enough that no cell folds.
    out = tmp_path / "problems.txt"
    with out.open("w") as fh:
        subprocess.run(
            [sys.executable, "-m", "evolve.cli", "problems"],
            stdout=fh,
            check=True,
            cwd=tmp_path,
            env={**os.environ, "COLUMNS": "2000"},
        )
    lines = out.read_text().splitlines()
    for name in PROBLEMS:
        spec = load_problem(name).spec
        assert spec.best_known is not None
        row = next(line for line in lines if line.startswith(f"│ {name} "))
        assert f"tolerance: {spec.tolerance}" in row
        if spec.best_known.note:
            assert spec.best_known.note in row
