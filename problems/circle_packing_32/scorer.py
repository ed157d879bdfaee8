"""Trusted scorer for ``circle_packing_32``: 32 disjoint circles in the unit square, sum of radii.

The candidate returns 32 rows ``[x, y, r]``. The checks, the pinned distance formula and the
tolerance (``TOL = 1e-12``, absolute) are those of :mod:`evolve.verify.circles`, with
``N = 32``; the score is ``sum_radii = math.fsum(r)``.

The tolerance lets a packing gain at most about ``N * TOL / 2 ~ 1.6e-11`` in the sum, far below
the 1e-8 gaps between the published records. The AlphaEvolve constructions pass: v1 2.9379445262
(google-deepmind/alphaevolve_results@4226acb, B.12) with zero slack, and v2 2.9395727712
(google-deepmind/alphaevolve_repository_of_problems@81f828f,
``packing_circle_max_sum_of_radii.ipynb``), whose tightest pair is exact under the pinned formula
``sqrt(dx*dx + dy*dy)`` and overlaps by 2.8e-17 under ``numpy.hypot`` (hence the pinned formula
and the 1e-12 tolerance). Published evaluators that allow 1e-6 overlaps (OpenEvolve, ThetaEvolve)
let each radius inflate by ~5e-7, worth ~1.6e-5 in the sum; that is why this one does not.
"""

from __future__ import annotations

from evolve.verify.circles import score_packing

N = 32
BEST_KNOWN = 2.9395727712


def score(output: object) -> tuple[dict[str, float], str]:
    """Validate the candidate's circles strictly and return (metrics, feedback)."""
    return score_packing(output, N, BEST_KNOWN)
