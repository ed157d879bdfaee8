"""Parent and inspiration selection: pure functions of the elites and an injected RNG.

Exploitation picks an elite with probability given by a softmax over standardized fitness
(FunSearch samples clusters by a softmax over scores); exploration picks uniformly over occupied
cells, which is what keeps MAP-Elites diverse.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

import numpy as np

from evolve.archive import Elite

# Plain floats, not numpy: an island holds tens of elites, where numpy's per-call overhead is
# several times the arithmetic; selection runs once per iteration on the controller's loop.


def fitness_weights(fitness: Sequence[float], temperature: float) -> list[float]:
    """Softmax of standardized fitness at ``temperature``; sums to one, ties get equal mass."""
    n = len(fitness)
    if n == 0:
        raise ValueError("no elites to weight")
    mean = math.fsum(fitness) / n
    spread = math.sqrt(math.fsum((f - mean) ** 2 for f in fitness) / n)
    best = max(fitness)
    scale = spread * temperature
    w = [math.exp((f - best) / scale) for f in fitness] if scale > 0 else [1.0] * n
    total = math.fsum(w)
    return [x / total for x in w]


def draw(weights: Sequence[float], rng: np.random.Generator) -> int:
    """An index drawn with probability proportional to ``weights`` (inverse CDF, one uniform)."""
    cumulative = list(accumulate(weights))
    index = bisect_right(cumulative, rng.random() * cumulative[-1])
    return min(index, len(cumulative) - 1)  # guards u * total rounding up to the total


def select_parent(
    elites: Sequence[Elite], rng: np.random.Generator, *, exploitation: float, temperature: float
) -> Elite:
    """One parent: a fitness-weighted elite with probability ``exploitation``, else uniform."""
    if not elites:
        raise ValueError("cannot select a parent from an empty island")
    ordered = sorted(elites, key=lambda e: e.cell)  # independent of dict order
    if rng.random() < exploitation:
        return ordered[draw(fitness_weights([e.fitness for e in ordered], temperature), rng)]
    return ordered[int(rng.integers(len(ordered)))]


def select_inspirations(
    elites: Sequence[Elite],
    parent: Elite,
    rng: np.random.Generator,
    *,
    n_top: int,
    n_diverse: int,
) -> tuple[list[Elite], list[Elite]]:
    """The island's best programs and programs from other cells, none of them the parent."""
    others = sorted((e for e in elites if e.program_id != parent.program_id), key=lambda e: e.cell)
    top = sorted(others, key=lambda e: (-e.fitness, e.iteration))[:n_top]
    top_ids = {e.program_id for e in top}
    pool = [e for e in others if e.program_id not in top_ids and e.cell != parent.cell]
    return top, sample_without_replacement(pool, min(n_diverse, len(pool)), rng)


def sample_without_replacement(items: Sequence[Elite], k: int, rng: np.random.Generator) -> list[Elite]:
    """``k`` distinct items in random order: the first ``k`` steps of a Fisher-Yates shuffle."""
    order = list(range(len(items)))
    for j in range(k):
        r = j + min(int(rng.random() * (len(order) - j)), len(order) - j - 1)
        order[j], order[r] = order[r], order[j]
    return [items[i] for i in order[:k]]


def choose_mode(weights: dict[str, float], rng: np.random.Generator) -> str:
    """A proposal kind (diff, rewrite, crossover) drawn by its configured weight."""
    names = sorted(k for k, w in weights.items() if w > 0)
    if not names:
        raise ValueError("llm.mode_weights: at least one positive weight is needed")
    return names[draw([weights[n] for n in names], rng)]
