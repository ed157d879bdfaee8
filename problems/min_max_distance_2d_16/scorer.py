"""Trusted scorer for ``min_max_distance_2d_16``: 16 points in the plane, minimize (dmax/dmin)^2.

The candidate returns 16 rows ``[x, y]``. Everything is recomputed in exact arithmetic by
:mod:`evolve.verify.points` (coordinates rescaled by a power of two into integers), which pins
the formula ``ratio_squared = max(d2) / min(d2)`` over
all pairs (AlphaEvolve, google-deepmind/alphaevolve_results@4226acb, B.8) and the validity checks
(shape, finiteness, no two points coinciding); no tolerance is involved.

Best known: 12.8892661120 (AlphaEvolve, B.8); previous record 12.890 (David Cantrell, 2009).
"""

from __future__ import annotations

from evolve.verify.points import score_distance_ratio

N = 16
DIM = 2
BEST_KNOWN = 12.8892661120


def score(output: object) -> tuple[dict[str, float], str]:
    """Validate the points and return (metrics, feedback)."""
    return score_distance_ratio(output, N, DIM, BEST_KNOWN)
