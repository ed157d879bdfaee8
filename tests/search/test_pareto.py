"""search=pareto: non-dominated sorting, crowding distance, and the front as the best."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from evolve.config import SearchConfig
from evolve.errors import UserError
from evolve.problem import Problem, load_problem
from evolve.scaffold import scaffold_problem
from evolve.search import Pareto, StrategyContext, build_strategy
from evolve.search.pareto import crowding_distance, dominates, non_dominated_sort, objective_vector
from tests.search.simulate import Outcome, simulate

vectors = st.lists(st.tuples(st.integers(0, 6).map(float), st.integers(0, 6).map(float)), min_size=1, max_size=40)


@given(points=vectors)
def test_fronts_are_ordered_by_dominance(points: list[tuple[float, float]]) -> None:
    ranks = non_dominated_sort(points)
    for i, p in enumerate(points):
        assert not any(dominates(q, p) for j, q in enumerate(points) if ranks[j] >= ranks[i])
        if ranks[i] > 0:
            assert any(dominates(q, p) for j, q in enumerate(points) if ranks[j] == ranks[i] - 1)


def test_crowding_gives_the_ends_infinity_and_favours_sparse_points() -> None:
    points = [(0.0, 10.0), (1.0, 9.0), (1.2, 8.8), (5.0, 5.0), (10.0, 0.0)]
    d = crowding_distance(points, range(5))  # type: ignore[arg-type]
    assert d[0] == d[4] == math.inf
    assert d[3] > d[1] and d[3] > d[2]


@pytest.fixture(scope="module")
def two_objectives(tmp_path_factory: pytest.TempPathFactory) -> Problem:
    folder = tmp_path_factory.mktemp("pareto") / "toy"
    scaffold_problem(folder)
    spec = yaml.safe_load((folder / "problem.yaml").read_text())
    spec["metrics"]["objectives"] = {"energy": "minimize", "min_distance": "maximize"}
    (folder / "problem.yaml").write_text(yaml.safe_dump(spec))
    return load_problem(folder)


outcome = st.one_of(st.none(), st.tuples(st.integers(1, 30).map(float), st.sampled_from([0.0, 0.1, 0.2, 0.3])))


@settings(max_examples=60, deadline=None)
@given(outcomes=st.lists(outcome, min_size=1, max_size=50), seed=st.integers(0, 2**32 - 1))
def test_the_front_is_every_non_dominated_program_told(two_objectives: Problem, outcomes: list[Outcome], seed: int) -> None:
    strategy = build_strategy(StrategyContext(two_objectives, SearchConfig(strategy="pareto", population=64), {"diff": 1.0}))
    _, told = simulate(strategy, two_objectives, (50.0, 0.1), outcomes, seed)
    objectives = two_objectives.spec.metrics.objectives
    scored = [(p, objective_vector(p, objectives)) for p in told if p.metrics]
    expected = {p.id for p, v in scored if not any(dominates(w, v) for _, w in scored)}
    assert {p.id for p in strategy.front()} == expected
    assert strategy.best is not None and strategy.best.id in expected  # the primary's best is on it


@settings(max_examples=40, deadline=None)
@given(outcomes=st.lists(outcome, min_size=1, max_size=60), seed=st.integers(0, 2**32 - 1))
def test_a_small_population_keeps_the_front_first(two_objectives: Problem, outcomes: list[Outcome], seed: int) -> None:
    strategy = build_strategy(StrategyContext(two_objectives, SearchConfig(strategy="pareto", population=8), {"diff": 1.0}))
    _, told = simulate(strategy, two_objectives, (50.0, 0.1), outcomes, seed)
    assert isinstance(strategy, Pareto)
    assert len(strategy.population) <= 8
    # Four min_distance values: a front never has more than four programs, so it is never cut.
    objectives = two_objectives.spec.metrics.objectives
    scored = [(p, objective_vector(p, objectives)) for p in told if p.metrics]
    expected = {p.id for p, v in scored if not any(dominates(w, v) for _, w in scored)}
    assert {p.id for p in strategy.front()} == expected


def test_pareto_without_two_objectives_names_the_file(toy: Problem, toy_dir: Path) -> None:
    with pytest.raises(UserError, match=r"problem\.yaml: metrics\.objectives"):
        build_strategy(StrategyContext(toy, SearchConfig(strategy="pareto"), {"diff": 1.0}))
