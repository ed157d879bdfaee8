from __future__ import annotations

from pathlib import Path

import pytest

from evolve.errors import UserError
from evolve.problem import load_problem


def _edit(folder: Path, old: str, new: str) -> None:
    path = folder / "problem.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_scaffolded_problem_loads(toy_dir: Path) -> None:
    p = load_problem(toy_dir)
    assert p.spec.metrics.primary == "energy"
    assert not p.maximize and p.is_better(1.0, 2.0) and p.fitness(2.0) == -2.0
    assert "EVOLVE-BLOCK-START" in p.initial_code
    assert len(p.fingerprint) == 16


def test_unknown_key_names_file_and_field(toy_dir: Path) -> None:
    _edit(toy_dir, "entry: run", "entry: run\nentryy: run")
    with pytest.raises(UserError, match=r"problem\.yaml: field 'entryy': unknown key"):
        load_problem(toy_dir)


def test_nested_unknown_key_names_the_path(toy_dir: Path) -> None:
    _edit(toy_dir, "timeout_s: 10", "timeout_s: 10\n  timout: 3")
    with pytest.raises(UserError, match=r"field 'limits\.timout': unknown key"):
        load_problem(toy_dir)


def test_wrong_type_names_the_field(toy_dir: Path) -> None:
    _edit(toy_dir, "timeout_s: 10", "timeout_s: soon")
    with pytest.raises(UserError, match=r"field 'limits\.timeout_s'"):
        load_problem(toy_dir)


def test_a_cpu_cores_limit_out_of_range_names_the_field(toy_dir: Path) -> None:
    _edit(toy_dir, "timeout_s: 10", "timeout_s: 10\n  cpu_cores: 0")
    with pytest.raises(UserError, match=r"field 'limits\.cpu_cores': Input should be greater"):
        load_problem(toy_dir)
    _edit(toy_dir, "cpu_cores: 0", "cpu_cores: 2.5")
    assert load_problem(toy_dir).spec.limits.cpu_cores == 2.5


def test_missing_initial_program_names_the_field(toy_dir: Path) -> None:
    _edit(toy_dir, "initial_program: initial.py", "initial_program: nope.py")
    with pytest.raises(UserError, match=r"field 'initial_program': file not found"):
        load_problem(toy_dir)


def test_bad_scorer_reference(toy_dir: Path) -> None:
    _edit(toy_dir, "scorer: scorer.py:score", "scorer: scorer")
    with pytest.raises(UserError, match=r"field 'scorer': .*file.py:function"):
        load_problem(toy_dir)


def test_unknown_problem_name_lists_known_ones() -> None:
    with pytest.raises(UserError, match=r"problem=does_not_exist: .*circle_packing"):
        load_problem("does_not_exist")


def test_fingerprint_changes_with_the_scorer(toy_dir: Path) -> None:
    before = load_problem(toy_dir).fingerprint
    (toy_dir / "scorer.py").write_text((toy_dir / "scorer.py").read_text() + "\n# changed\n")
    assert load_problem(toy_dir).fingerprint != before
