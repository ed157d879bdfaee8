"""Trusted scorer for ``second_autocorrelation``: a lower bound on the constant C2 (maximize).

C2 is the smallest constant with ``||f*f||_2^2 <= C2 ||f*f||_1 ||f*f||_inf`` for every
non-negative f; any such f certifies ``C2 >= ||g||_2^2 / (||g||_1 ||g||_inf)`` with g = f*f. The
candidate returns the heights ``a_0..a_{n-1} >= 0`` of a step function with n equal steps. Then
g is piecewise linear through the values of ``numpy.convolve(a, a)`` (length m = 2n - 1) with zeros
at both ends, on m + 1 equal intervals of width ``h = 1/(m + 1)``, and (AlphaEvolve notebook,
google-deepmind/alphaevolve_results@4226acb, B.2; GigaEvo's validator is identical)

    ||g||_2^2 = sum_i h/3 * (y_i^2 + y_i*y_{i+1} + y_{i+1}^2),   y = [0, g_0, ..., g_{m-1}, 0]
    ||g||_1   = sum |g| / (m + 1),     ||g||_inf = max |g|
    c2        = ||g||_2^2 / (||g||_1 * ||g||_inf)

(the exact integrals of the piecewise-linear g). The notebook takes h from ``numpy.linspace``;
the constant h used here differs by rounding only (~1e-16 relative).

Pinned computation, in IEEE double precision (the parsing, sign check, scaling and FFT are
those of :mod:`evolve.verify.step_functions`, with ``MAX_STEPS = 200_000`` and
``DIRECT_MAX = 8192``):

- the output is a flat list of 1..MAX_STEPS finite real numbers, every one ``>= 0`` exactly (no
  tolerance: a negative height is rejected, never clipped) and not all zero;
- the heights are divided by their maximum first (c2 is scale-invariant; this removes underflow
  and overflow tricks);
- ``g`` is ``numpy.convolve`` for n <= DIRECT_MAX and a zero-padded ``numpy.fft.rfft`` product
  above that (absolute error ~1e-15 of max g, far below any record gap), then c2 as above.

Best known: 0.9610210778 (AlphaEvolve v2, 50,000 steps; arXiv 2511.02864, problem 3). ImprovEvolve
(arXiv 2602.10233) reports 0.96258, not re-verified here. Previous record before AlphaEvolve v2:
0.901564 (Boyer and Li 2025); AlphaEvolve v1 had 0.8962799442 (50 steps).
"""

from __future__ import annotations

import numpy as np

from evolve.verify.step_functions import DIRECT_MAX, autoconvolution, parse_scaled_heights

BEST_KNOWN = 0.9610210778


def c2_value(g: np.ndarray) -> float:
    """The pinned C2 formula for the autoconvolution values ``g`` (see the module docstring)."""
    m = len(g)
    h = 1.0 / (m + 1)
    y = np.concatenate(([0.0], g, [0.0]))
    y1, y2 = y[:-1], y[1:]
    l2_squared = float(np.sum(h / 3 * (y1 * y1 + y1 * y2 + y2 * y2)))
    l1 = float(np.sum(np.abs(g)) / (m + 1))
    linf = float(np.max(np.abs(g)))
    return l2_squared / (l1 * linf)


def score(output: object) -> tuple[dict[str, float], str]:
    """Validate the heights and return (metrics, feedback)."""
    a = parse_scaled_heights(output)
    n = len(a)
    g = autoconvolution(a, DIRECT_MAX)
    c2 = c2_value(g)
    flat = int((g >= g.max() * (1 - 1e-3)).sum())
    metrics = {"c2": c2, "n_steps": float(n), "plateau_fraction": flat / len(g)}
    feedback = (
        f"C2 lower bound {c2:.10f} from {n} steps (best known {BEST_KNOWN}, constant f gives "
        f"2/3); f*f is within 0.1% of its maximum on {flat} of {len(g)} points"
    )
    return metrics, feedback
