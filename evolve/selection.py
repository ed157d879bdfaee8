"""Parent and inspiration selection: pure functions of the elites and an injected RNG.

Exploitation picks an elite with probability given by a softmax over standardized fitness
(FunSearch samples clusters by a softmax over scores); exploration picks uniformly over occupied
cells, which is what keeps MAP-Elites diverse.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evolve.archive import Elite


def fitness_weights(fitness: Sequence[float], temperature: float) -> np.ndarray:
    """Softmax of standardized fitness at ``temperature``; sums to one, ties get equal mass."""
    f = np.asarray(fitness, dtype=float)
    if f.size == 0:
        raise ValueError("no elites to weight")
    spread = f.std()
    z = (f - f.max()) / spread if spread > 0 else np.zeros_like(f)
    w = np.exp(z / temperature)
    return np.asarray(w / w.sum())


def select_parent(
    elites: Sequence[Elite], rng: np.random.Generator, *, exploitation: float, temperature: float
) -> Elite:
    """One parent: a fitness-weighted elite with probability ``exploitation``, else uniform."""
    if not elites:
        raise ValueError("cannot select a parent from an empty island")
    ordered = sorted(elites, key=lambda e: e.cell)  # independent of dict order
    if rng.random() < exploitation:
        p = fitness_weights([e.fitness for e in ordered], temperature)
        return ordered[int(rng.choice(len(ordered), p=p))]
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
    k = min(n_diverse, len(pool))
    diverse = [pool[int(i)] for i in rng.choice(len(pool), size=k, replace=False)] if k else []
    return top, diverse


def choose_mode(weights: dict[str, float], rng: np.random.Generator) -> str:
    """A proposal kind (diff, rewrite, crossover) drawn by its configured weight."""
    names = sorted(k for k, w in weights.items() if w > 0)
    if not names:
        raise ValueError("llm.mode_weights: at least one positive weight is needed")
    w = np.array([weights[n] for n in names], dtype=float)
    return names[int(rng.choice(len(names), p=w / w.sum()))]
