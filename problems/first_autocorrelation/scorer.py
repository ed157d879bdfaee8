"""Trusted scorer for ``first_autocorrelation``: an upper bound on the constant C1 (minimize).

C1 is the largest constant with ``max_t (f*f)(t) >= C1 (int f)^2`` for every non-negative f
supported on [-1/4, 1/4]. Any such f certifies ``C1 <= max(f*f) / (int f)^2``. The candidate
returns the heights ``a_0..a_{n-1} >= 0`` of a step function with n equal steps on [-1/4, 1/4];
for it (AlphaEvolve notebook, google-deepmind/alphaevolve_results@4226acb, B.1)

    C1 bound = 2n * max(a * a) / (sum a)^2,     a * a = numpy.convolve(a, a)

Pinned computation, in IEEE double precision (the parsing, sign check, scaling and FFT are
those of :mod:`evolve.verify.step_functions`, with ``MAX_STEPS = 200_000`` and
``DIRECT_MAX = 8192``):

- the output is a flat list of 1..MAX_STEPS finite real numbers, every one ``>= 0`` exactly (no
  tolerance: a negative height is rejected, never clipped) and not all zero;
- the heights are divided by their maximum first (the bound is scale-invariant; this removes the
  underflow and overflow tricks AlphaEvolve's candidates found, see AE2's autocorrelation notebook);
- ``a * a`` is ``numpy.convolve`` for n <= DIRECT_MAX and a zero-padded ``numpy.fft.rfft``
  product above that (absolute error ~1e-15 of max(a * a), far below any record gap);
- ``c1 = 2 * n * max(a * a) / sum(a)**2``.

Best known: 1.5031324360 (ThetaEvolve, refining AlphaEvolve v2's 1.5031635547; the archived 1319-step
functions). Previous human record: 1.5097201507 (Matolcsi and Vinuesa 2010, 208 steps).
"""

from __future__ import annotations

from evolve.verify.step_functions import DIRECT_MAX, autoconvolution, parse_scaled_heights

BEST_KNOWN = 1.503132436


def score(output: object) -> tuple[dict[str, float], str]:
    """Validate the heights and return (metrics, feedback)."""
    a = parse_scaled_heights(output)
    n = len(a)
    conv = autoconvolution(a, DIRECT_MAX)
    c1 = float(2 * n * conv.max() / a.sum() ** 2)
    at_max = int((conv >= conv.max() * (1 - 1e-6)).sum())
    metrics = {"c1": c1, "n_steps": float(n), "near_max_points": float(at_max)}
    feedback = (
        f"C1 upper bound {c1:.10f} from {n} steps (best known {BEST_KNOWN}, constant f gives 2); "
        f"f*f is within 1e-6 of its maximum at {at_max} of {len(conv)} points"
    )
    return metrics, feedback
