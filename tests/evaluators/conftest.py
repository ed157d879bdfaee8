"""Fixtures for the sandbox tests: the toy problem, variants of it, an evaluator per test."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from evaluators.isolation import UNCONFINED, SandboxUnavailable
from evaluators.local import LocalEvaluator
from evolve.config import EvaluatorConfig
from evolve.problem import Problem, load_problem

FIXTURE = Path(__file__).parent / "fixtures" / "toy"


@pytest.fixture
def toy_problem() -> Problem:
    return load_problem(FIXTURE)


@pytest.fixture
def make_problem(tmp_path: Path) -> Callable[..., Problem]:
    """Copy the toy problem with ``problem.yaml`` fields overridden (``limits`` merged)."""

    def make(**overrides: Any) -> Problem:
        root = tmp_path / "toy"
        if root.exists():
            shutil.rmtree(root)
        shutil.copytree(FIXTURE, root)
        raw = yaml.safe_load((root / "problem.yaml").read_text())
        limits = {**raw.get("limits", {}), **overrides.pop("limits", {})}
        raw.update(overrides, limits=limits)
        (root / "problem.yaml").write_text(yaml.safe_dump(raw))
        return load_problem(root)

    return make


@pytest.fixture
def shared_dir(tmp_path: Path) -> Path:
    """A directory any sandbox uid may write to, for candidates that report their pids."""
    path = tmp_path / "shared"
    path.mkdir()
    path.chmod(0o777)
    tmp_path.chmod(0o755)
    return path


@pytest.fixture
async def evaluator(toy_problem: Problem) -> AsyncIterator[LocalEvaluator]:
    ev = LocalEvaluator(toy_problem, EvaluatorConfig(concurrency=2))
    yield ev
    await ev.aclose()


@pytest.fixture
def evaluator_for() -> Callable[[Problem], LocalEvaluator]:
    """Build an evaluator for a problem variant; closed by the test via ``aclose``."""

    def build(problem: Problem, **cfg: Any) -> LocalEvaluator:
        return LocalEvaluator(problem, EvaluatorConfig(**{"concurrency": 2, **cfg}))

    return build


async def without_namespaces(problem: Problem, **cfg: Any) -> LocalEvaluator:
    """An evaluator with no bubblewrap: a sandbox uid where this setup has one (root, an
    interpreter that uid can read), else the explicit unconfined opt-in; started."""
    ev = LocalEvaluator(problem, EvaluatorConfig(**{"concurrency": 2, **cfg, "isolation": "process"}))
    try:
        await ev.evaluate("def run():\n    return {'x': 1}\n")
        return ev
    except SandboxUnavailable:
        await ev.aclose()
    ev = LocalEvaluator(problem, EvaluatorConfig(**{"concurrency": 2, **cfg, "isolation": UNCONFINED}))
    await ev.evaluate("def run():\n    return {'x': 1}\n")
    return ev
