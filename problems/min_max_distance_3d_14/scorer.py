"""Trusted scorer for ``min_max_distance_3d_14``: 14 points in space, minimize (dmax/dmin)^2.

The candidate returns 14 rows ``[x, y, z]``. Everything is recomputed in exact arithmetic by
:mod:`evolve.verify.points` (coordinates rescaled by a power of two into integers), which pins
the formula ``ratio_squared = max(d2) / min(d2)`` over
all pairs (AlphaEvolve, google-deepmind/alphaevolve_results@4226acb, B.8) and the validity checks
(shape, finiteness, no two points coinciding); no tolerance is involved.

Best known: 4.1658497672 (AlphaEvolve, B.8); previous record 4.168 (as cited by AlphaEvolve, B.8).
"""

from __future__ import annotations

from evolve.verify.points import score_distance_ratio

N = 14
DIM = 3
BEST_KNOWN = 4.1658497672


def score(output: object) -> tuple[dict[str, float], str]:
    """Validate the points and return (metrics, feedback)."""
    return score_distance_ratio(output, N, DIM, BEST_KNOWN)
