"""One toy problem for the whole module: the strategies only read it."""

from __future__ import annotations

import pytest

from evolve.problem import Problem, load_problem
from evolve.scaffold import scaffold_problem


@pytest.fixture(scope="module")
def toy_problem(tmp_path_factory: pytest.TempPathFactory) -> Problem:
    folder = tmp_path_factory.mktemp("search") / "toy"
    scaffold_problem(folder)
    return load_problem(folder)
