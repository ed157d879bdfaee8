from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from evolve.archive import Elite
from evolve.selection import (
    choose_mode,
    draw,
    fitness_weights,
    sample_without_replacement,
    select_inspirations,
    select_parent,
)


@given(st.lists(st.floats(-1e9, 1e9), min_size=1, max_size=50), st.floats(0.05, 10))
def test_fitness_weights_sum_to_one_and_favor_better(fits: list[float], temperature: float) -> None:
    w = fitness_weights(fits, temperature)
    assert sum(w) == pytest.approx(1.0)
    assert all(x >= 0 for x in w)
    best, worst = int(np.argmax(fits)), int(np.argmin(fits))
    assert w[best] >= w[worst]


def _elites(n: int) -> list[Elite]:
    return [Elite(f"p{k}", float(k), (k,), k) for k in range(n)]


def test_select_parent_is_reproducible_with_the_same_seed() -> None:
    elites = _elites(10)
    a = [select_parent(elites, np.random.default_rng(7), exploitation=0.5, temperature=1.0) for _ in range(3)]
    b = [select_parent(elites, np.random.default_rng(7), exploitation=0.5, temperature=1.0) for _ in range(3)]
    assert a == b


def test_exploitation_prefers_fitter_elites_and_exploration_is_uniform() -> None:
    elites = _elites(5)
    rng = np.random.default_rng(0)
    exploit = [select_parent(elites, rng, exploitation=1.0, temperature=0.5).fitness for _ in range(4000)]
    explore = [select_parent(elites, rng, exploitation=0.0, temperature=0.5).fitness for _ in range(4000)]
    assert np.mean(exploit) > 3.0
    counts = np.bincount(np.array(explore, dtype=int), minlength=5) / 4000
    assert np.allclose(counts, 0.2, atol=0.03)


def test_inspirations_exclude_the_parent_and_do_not_repeat(rng: np.random.Generator) -> None:
    elites = _elites(8)
    parent = elites[3]
    top, diverse = select_inspirations(elites, parent, rng, n_top=2, n_diverse=3)
    ids = [e.program_id for e in top + diverse]
    assert parent.program_id not in ids
    assert len(ids) == len(set(ids)) == 5
    assert [e.fitness for e in top] == [7.0, 6.0]


def test_choose_mode_honours_weights(rng: np.random.Generator) -> None:
    draws = [choose_mode({"diff": 3.0, "rewrite": 1.0, "crossover": 0.0}, rng) for _ in range(4000)]
    assert "crossover" not in draws
    assert draws.count("diff") / 4000 == pytest.approx(0.75, abs=0.03)
    with pytest.raises(ValueError):
        choose_mode({"diff": 0.0}, rng)


def test_draw_follows_the_weights_and_never_picks_a_zero_weight(rng: np.random.Generator) -> None:
    weights = [0.0, 1.0, 0.0, 3.0, 0.0]
    counts = np.bincount([draw(weights, rng) for _ in range(8000)], minlength=5) / 8000
    assert counts[0] == counts[2] == counts[4] == 0
    assert counts[3] == pytest.approx(0.75, abs=0.02)


def test_sample_without_replacement_is_uniform_and_distinct(rng: np.random.Generator) -> None:
    items = _elites(6)
    seen = np.zeros(6)
    for _ in range(6000):
        picked = sample_without_replacement(items, 2, rng)
        assert len({e.program_id for e in picked}) == 2
        for e in picked:
            seen[int(e.fitness)] += 1
    assert np.allclose(seen / 6000, 2 / 6, atol=0.025)
    assert sample_without_replacement(items, 0, rng) == []
    assert sorted(e.fitness for e in sample_without_replacement(items, 6, rng)) == [float(k) for k in range(6)]
