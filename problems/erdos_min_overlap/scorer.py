"""Trusted scorer for ``erdos_min_overlap``: an upper bound on Erdős' minimum overlap constant.

Haugland's formulation (2016), as in the AlphaEvolve notebook (google-deepmind/alphaevolve_results
@4226acb, B.5): for any step function h on [0, 2] with values in [0, 1] and integral 1,

    C5 <= max_k  int h(x) (1 - h(x + k)) dx,

which for n equal steps (width 2/n) is ``max(numpy.correlate(h, 1 - h, "full")) * 2 / n``.

Pinned computation, in IEEE double precision:

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

MAX_STEPS = 200_000
DIRECT_MAX = 8192
BEST_KNOWN = 0.3809230351


def parse_heights(output: object, max_steps: int = MAX_STEPS) -> np.ndarray:
    """The candidate's values of h as a 1-D float array, or :class:`Rejected` saying why not."""
    if not isinstance(output, list | tuple):
        raise Rejected(f"expected a flat list of values of h; got {type(output).__name__}")
    if not 1 <= len(output) <= max_steps:
        raise Rejected(f"expected between 1 and {max_steps} values of h, got {len(output)}")
    for i, v in enumerate(output):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise Rejected(f"value {i} is {v!r:.40}, not a real number (return a flat list)")
    try:
        a = np.array(output, dtype=np.float64)
    except (OverflowError, ValueError) as exc:
        raise Rejected(f"values are not representable as floats: {exc}") from None
    bad = np.flatnonzero(~np.isfinite(a))
    if bad.size:
        raise Rejected(f"value {bad[0]} is not finite ({a[bad[0]]})")
    return a


def overlap_correlation(h: np.ndarray) -> np.ndarray:
    """``numpy.correlate(h, 1 - h, "full")``; by FFT for long inputs (see the module docstring)."""
    n = len(h)
    g = 1.0 - h
    if n <= DIRECT_MAX:
        return np.correlate(h, g, "full")
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(h, size) * np.fft.rfft(g[::-1], size)
    return np.fft.irfft(spectrum, size)[: 2 * n - 1]


def score(output: object) -> tuple[dict[str, float], str]:
    """Validate and normalize h, then return (metrics, feedback)."""
    h = parse_heights(output)
    neg = np.flatnonzero(h < 0)
    if neg.size:
        raise Rejected(
            f"{neg.size} negative value(s), first at index {neg[0]} ({float(h[neg[0]])!r}); "
            "h must take values in [0, 1]"
        )
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
