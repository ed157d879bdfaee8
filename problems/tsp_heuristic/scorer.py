"""Trusted scorer for ``tsp_heuristic``: mean length of the tours a construction heuristic built.

The candidate runs its heuristic inside the sandbox and returns one tour per instance. This
scorer regenerates the instances itself from the seed and recomputes every length; it never
trusts a number from the candidate.

Instances (LLM4AD ``tsp_construct``, as used by EoH): ``RandomState(2024)``, then 16 draws of
``rand(50, 2)`` in sequence: 16 instances of 50 cities uniform in [0, 1]^2 (legacy
``RandomState`` streams are frozen across numpy versions).

Checks: a list of 16 tours, each a list of 50 integers that is a permutation of 0..49 (any
starting city and direction). Length of a tour ``t`` (closed, back to its first city), pinned:
``d = p[t] - p[roll(t, -1)]``, ``sum(sqrt(d_x*d_x + d_y*d_y))`` in IEEE double precision. The
score is the mean over the 16 instances.

Reference values (recomputed): nearest neighbour from city 0 6.8240 (the starting heuristic);
LKH-3 (``elkai``, 10 runs per instance) 5.6839, a 20.1% gap for nearest neighbour.
"""

from __future__ import annotations

import functools

import numpy as np

from evolve.scoring import Rejected

SEED = 2024
COUNT = 16
SIZE = 50
LKH_REFERENCE = 5.6839


@functools.cache
def instances() -> tuple[np.ndarray, ...]:
    """The 16 instances, generated here from the seed."""
    rng = np.random.RandomState(SEED)
    return tuple(rng.rand(SIZE, 2) for _ in range(COUNT))


def tour_length(points: np.ndarray, tour: np.ndarray) -> float:
    """Closed tour length with the pinned formula."""
    d = points[tour] - points[np.roll(tour, -1)]
    return float(np.sum(np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1])))


def parse_tour(raw: object, i: int) -> np.ndarray:
    """Instance ``i``'s tour as an int array that is a permutation, or :class:`Rejected`."""
    if not isinstance(raw, list | tuple) or len(raw) != SIZE:
        got = len(raw) if isinstance(raw, list | tuple) else type(raw).__name__
        raise Rejected(f"tour {i}: expected a list of all {SIZE} cities, got {got}")
    for v in raw:
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < SIZE:
            raise Rejected(f"tour {i}: {v!r:.40} is not a city index in 0..{SIZE - 1}")
    tour = np.array(raw, dtype=np.int64)
    counts = np.bincount(tour, minlength=SIZE)
    if (counts != 1).any():
        missing = np.flatnonzero(counts == 0)[:5].tolist()
        repeated = np.flatnonzero(counts > 1)[:5].tolist()
        raise Rejected(
            f"tour {i} is not a permutation: cities {repeated} visited more than once, "
            f"{missing} never visited"
        )
    return tour


def score(output: object) -> tuple[dict[str, float], str]:
    """Verify every tour and return (metrics, feedback)."""
    if not isinstance(output, list | tuple) or len(output) != COUNT:
        got = len(output) if isinstance(output, list | tuple) else type(output).__name__
        raise Rejected(f"expected a list of {COUNT} tours, one per instance; got {got}")
    lengths = np.array(
        [
            tour_length(p, parse_tour(raw, i))
            for i, (raw, p) in enumerate(zip(output, instances(), strict=True))
        ]
    )
    mean = float(lengths.mean())
    worst = int(np.argmax(lengths))
    metrics = {
        "mean_length": mean,
        "max_length": float(lengths.max()),
        "gap_to_lkh_pct": 100.0 * (mean / LKH_REFERENCE - 1.0),
    }
    feedback = (
        f"valid tours; mean length {mean:.4f} over {COUNT} instances of {SIZE} cities "
        f"(nearest neighbour 6.8240, LKH-3 {LKH_REFERENCE}); longest is instance {worst} "
        f"({lengths[worst]:.4f})"
    )
    return metrics, feedback
