"""Helpers for the problem-suite tests: load a problem's scorer or initial program by path.

Scorers and initial programs are loaded from their files, the way the evaluator loads them, under
module names unique per problem so that the many ``scorer.py`` files never collide.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PROBLEMS = REPO / "problems"
DATA = Path(__file__).resolve().parent / "data"


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_scorer() -> Callable[[str], ModuleType]:
    """``load_scorer("circle_packing")`` -> the module ``problems/circle_packing/scorer.py``."""
    cache: dict[str, ModuleType] = {}

    def load(problem: str) -> ModuleType:
        if problem not in cache:
            cache[problem] = _load(PROBLEMS / problem / "scorer.py", f"_scorer_{problem}")
        return cache[problem]

    return load


@pytest.fixture(scope="session")
def reference() -> Callable[[str], Any]:
    """``reference("heilbronn.json")`` -> the parsed copy of a published construction file."""

    def load(filename: str) -> Any:
        return json.loads((DATA / filename).read_text())

    return load


@pytest.fixture(scope="session")
def run_initial() -> Callable[[str], Any]:
    """``run_initial("circle_packing")`` -> the initial program's output after a JSON round trip.

    Calls the entry with its ``entry_kwargs`` in this process; the sandbox does the same in a
    child process and sends the return value to the scorer as JSON.
    """
    from evolve.problem import load_problem

    def run(problem: str) -> Any:
        spec = load_problem(PROBLEMS / problem).spec
        module = _load(PROBLEMS / problem / spec.initial_program, f"_initial_{problem}")
        out = getattr(module, spec.entry)(**spec.entry_kwargs)
        return json.loads(json.dumps(out, default=_to_json))

    return run


def _to_json(obj: object) -> object:
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")
