"""Trusted scorer for ``third_autocorrelation``: an upper bound on C3', the max|f*f| variant (minimize).

C3' is the largest constant with ``max_t |(f*f)(t)| >= C3' (int f)^2`` for every real f (of
either sign) supported on [-1/4, 1/4]; any such f certifies ``C3' <= max|f*f| / (int f)^2``. This
is the Matolcsi-Vinuesa variant, with the absolute value INSIDE the maximum. The other variant in
the literature, C3 = |max(f*f)| / (int f)^2 (AlphaEvolve's first B.3 construction, 1.4556), is a
different problem: its 400-step construction scores 4.334 here. OpenEvolve and GigaEvo compute
C3' but compare with C3's 1.4557 (benchmarks.md, rule 4); this problem uses C3' throughout.

The candidate returns real heights ``a_0..a_{n-1}`` of a step function with n equal steps on
[-1/4, 1/4]; then (AlphaEvolve notebook, google-deepmind/alphaevolve_results@4226acb, B.3, second
construction)

    C3' bound = 2n * max|a * a| / (sum a)^2,     a * a = numpy.convolve(a, a)

Pinned computation, in IEEE double precision (the parsing, scaling and FFT are
those of :mod:`evolve.verify.step_functions`, with ``MAX_STEPS = 200_000`` and
``DIRECT_MAX = 8192``):

- the output is a flat list of 1..MAX_STEPS finite real numbers (negative values allowed), not
  all zero;
- the heights are divided by their largest absolute value first (the bound is scale-invariant;
  this removes underflow and overflow tricks);
- ``a * a`` is ``numpy.convolve`` for n <= DIRECT_MAX and a zero-padded ``numpy.fft.rfft``
  product above that (absolute error ~1e-15 of max|a|^2 * n, far below any record gap);
- ``c3 = 2 * n * max(abs(a * a)) / sum(a)**2``; a sum of exactly 0 (or a non-finite result) is
  rejected.

Best known: 1.4687620697 (AlphaEvolve, 150 steps). Previous record: 1.4993 (Matolcsi and Vinuesa
2010).
"""

from __future__ import annotations

import numpy as np

from evolve.scoring import Rejected
from evolve.verify.step_functions import DIRECT_MAX, autoconvolution, parse_scaled_heights

BEST_KNOWN = 1.4687620697


def score(output: object) -> tuple[dict[str, float], str]:
    """Validate the heights and return (metrics, feedback)."""
    a = parse_scaled_heights(output, signed=True)
    n = len(a)
    total = a.sum()
    if total == 0:
        raise Rejected(
            "the heights sum to 0; the bound divides by (int f)^2, so it must not vanish"
        )
    conv = np.abs(autoconvolution(a, DIRECT_MAX))
    c3 = float(2 * n * conv.max() / total**2)
    if not np.isfinite(c3):
        raise Rejected(f"the bound is not finite ({c3}); the sum of the heights is too close to 0")
    metrics = {
        "c3": c3,
        "n_steps": float(n),
        "negative_fraction": float((a < 0).sum() / n),
    }
    feedback = (
        f"C3' upper bound (max|f*f| variant) {c3:.10f} from {n} steps (best known {BEST_KNOWN}, "
        f"constant f gives 2); {int((a < 0).sum())} negative step(s)"
    )
    return metrics, feedback
