"""Trusted scorer for ``erdos_min_overlap``: an upper bound on Erdős' minimum overlap constant.

Haugland's formulation (2016), as in the AlphaEvolve notebook (google-deepmind/alphaevolve_results
@4226acb, B.5): for any step function h on [0, 2] with values in [0, 1] and integral 1,

    C5 <= max_k  int h(x) (1 - h(x + k)) dx,

which for n equal steps (width 2/n) is ``max(numpy.correlate(h, 1 - h, "full")) * 2 / n``.

Pinned computation, in IEEE double precision (the parsing, sign check and FFT are
those of :mod:`evolve.verify.step_functions`, with ``MAX_STEPS = 200_000`` and
``DIRECT_MAX = 8192``):

- the output is a flat list of 1..MAX_STEPS finite real numbers, every one ``>= 0`` exactly, with
  a positive sum;
- the integral is normalized HERE rather than trusted or accepted "approximately" (OpenEvolve's
  evaluator accepts an integral of 1 +- 1e-3, far looser than the 4e-6 record margin):
  ``h = h * ((n / 2) / sum(h))`` (a factor of exactly 1.0 when the sum is already n/2, as in the
  published construction);
- every normalized value must then be ``<= 1`` exactly (no tolerance), else the output is rejected;
- the correlation is ``numpy.correlate(h, 1 - h, "full")`` for n <= DIRECT_MAX and a zero-padded
  ``numpy.fft.rfft`` product above that; ``c5 = max(correlation) * 2 / n``.

Best known: 0.3809230351 (AlphaEvolve, 95 steps). Previous record: 0.380927 (Haugland 2016).
"""

from __future__ import annotations

import numpy as np

from evolve.scoring import Rejected
from evolve.verify.step_functions import (
    DIRECT_MAX,
    fft_convolve,
    parse_heights,
    require_non_negative,
)

BEST_KNOWN = 0.3809230351


def overlap_correlation(h: np.ndarray) -> np.ndarray:
    """``numpy.correlate(h, 1 - h, "full")``; by FFT for long inputs (see the module docstring)."""
    g = 1.0 - h
    if len(h) <= DIRECT_MAX:
        return np.correlate(h, g, "full")
    return fft_convolve(h, g[::-1])


def score(output: object) -> tuple[dict[str, float], str]:
    """Validate and normalize h, then return (metrics, feedback)."""
    h = parse_heights(output, noun="value", listing="values of h")
    require_non_negative(h, noun="value", requirement="h must take values in [0, 1]")
    n = len(h)
    total = h.sum()
    if not total > 0:
        raise Rejected("h sums to 0; it must have integral 1 (sum n/2)")
    h = h * ((n / 2) / total)
    over = np.flatnonzero(h > 1.0)
    if over.size:
        i = int(over[np.argmax(h[over])])
        raise Rejected(
            f"after scaling h to integral 1 (sum n/2 = {n / 2:g}; yours was {float(total)!r}), "
            f"{over.size} value(s) exceed 1, the largest at index {i} ({float(h[i])!r}); lower the "
            "high steps or spread the mass over more steps"
        )
    corr = overlap_correlation(h)
    k = int(np.argmax(corr))
    c5 = float(corr[k] * 2 / n)
    metrics = {
        "c5": c5,
        "n_steps": float(n),
        "max_height": float(h.max()),
    }
    feedback = (
        f"C5 upper bound {c5:.10f} from {n} steps (best known {BEST_KNOWN}, h = 1/2 gives 0.5); "
        f"the worst shift is k = {k - (n - 1)} steps; after normalization max h = {h.max():.6f}"
    )
    return metrics, feedback
