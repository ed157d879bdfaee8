from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from evolve.archive import AddStatus, Archive, Elite, cell_of, compute_features, migration_plan
from evolve.problem import FeatureSpec

SPECS = (FeatureSpec(name="code_length", min=0, max=100, bins=4), FeatureSpec(name="m", min=0, max=1, bins=2))


def test_cell_of_bins_and_clips_out_of_range_values() -> None:
    assert cell_of(SPECS, {"code_length": 0, "m": 0.49}) == (0, 0)
    assert cell_of(SPECS, {"code_length": 99.9, "m": 0.5}) == (3, 1)
    assert cell_of(SPECS, {"code_length": 1e9, "m": -5}) == (3, 0)
    assert cell_of(SPECS, {"code_length": math.nan}) == (0, 0)


def test_compute_features_reads_code_and_metrics() -> None:
    f = compute_features(SPECS, {"m": 0.25}, "abc\ndef")
    assert f == {"code_length": 7.0, "m": 0.25}


def test_add_reports_new_improve_and_not_added() -> None:
    a = Archive(1, SPECS)
    assert a.add(0, Elite("a", 1.0, (0, 0), 1)) is AddStatus.NEW
    assert a.add(0, Elite("b", 1.0, (0, 0), 2)) is AddStatus.NOT_ADDED  # ties keep the incumbent
    assert a.add(0, Elite("c", 2.0, (0, 0), 3)) is AddStatus.IMPROVE_EXISTING
    assert a.islands[0].cells[(0, 0)].program_id == "c"
    assert a.coverage() == [1 / 8]


@given(st.lists(st.tuples(st.integers(0, 3), st.floats(-1e6, 1e6)), min_size=1, max_size=60))
def test_an_elite_is_only_replaced_by_a_better_program(inserts: list[tuple[int, float]]) -> None:
    a = Archive(1, SPECS)
    best_per_cell: dict[tuple[int, ...], float] = {}
    for k, (c, fit) in enumerate(inserts):
        cell = (c, 0)
        a.add(0, Elite(f"p{k}", fit, cell, k))
        best_per_cell[cell] = max(best_per_cell.get(cell, -math.inf), fit)
    for cell, elite in a.islands[0].cells.items():
        assert elite.fitness == best_per_cell[cell]


@given(st.lists(st.lists(st.floats(-100, 100), min_size=1, max_size=6), min_size=2, max_size=5))
def test_migration_never_loses_the_best(island_fits: list[list[float]]) -> None:
    a = Archive(len(island_fits), SPECS)
    for i, fits in enumerate(island_fits):
        for k, fit in enumerate(fits):
            a.add(i, Elite(f"i{i}p{k}", fit, (k % 4, k % 2), k))
    before = a.best()
    owner = next(i for i, isl in enumerate(a.islands) if before in isl.cells.values())
    for elite, _src, dst in migration_plan([isl.elites() for isl in a.islands], 1):
        a.add(dst, elite)
    after = a.best()
    assert before is not None and after is not None
    assert after.fitness == before.fitness
    # the next island now holds an elite at least as good as the best one
    receiver = a.islands[(owner + 1) % len(a.islands)].best()
    assert receiver is not None and receiver.fitness >= before.fitness


def test_migration_plan_is_empty_with_one_island() -> None:
    assert migration_plan([[Elite("a", 1.0, (0, 0), 0)]], 2) == []
