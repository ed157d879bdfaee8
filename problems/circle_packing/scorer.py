"""Trusted scorer for ``circle_packing``: 26 disjoint circles in the unit square, sum of radii.

The candidate returns 26 rows ``[x, y, r]``. The checks, the pinned distance formula and the
tolerance (``TOL = 1e-12``, absolute) are those of :mod:`evolve.verify.circles`, with
``N = 26``; the score is ``sum_radii = math.fsum(r)``.

The tolerance lets a packing gain at most about ``N * TOL / 2 ~ 1.3e-11`` in the sum, far below
the 1e-8 gaps between the published records. The AlphaEvolve constructions pass with zero slack:
v1 2.6358627564 (google-deepmind/alphaevolve_results@4226acb, B.12) and v2 2.6359830849
(google-deepmind/alphaevolve_repository_of_problems@81f828f,
``packing_circle_max_sum_of_radii.ipynb``). Published evaluators that allow 1e-6 overlaps
(OpenEvolve, ThetaEvolve) let each radius inflate by ~5e-7, worth ~1.3e-5 in the sum; that is
why this one does not.
"""

from __future__ import annotations

from evolve.verify.circles import score_packing

N = 26
BEST_KNOWN = 2.6359830849


def score(output: object) -> tuple[dict[str, float], str]:
    """Validate the candidate's circles strictly and return (metrics, feedback)."""
    return score_packing(output, N, BEST_KNOWN)
