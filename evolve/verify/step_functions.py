"""Step functions given by their heights: parse, check the sign, normalize, autoconvolve.

The autocorrelation inequalities (AlphaEvolve notebook, google-deepmind/alphaevolve_results
@4226acb, B.1-B.3) and Erdős' minimum overlap problem (B.5) all score a function f with n equal
steps, given as a flat list of heights ``a_0..a_{n-1}``. Shared pinned computation, in IEEE
double precision:

- the output is a flat list of 1..``MAX_STEPS`` finite real numbers (JSON ints or floats;
  booleans, strings, nulls and nested lists are rejected);
- where f must be non-negative, every height must be ``>= 0`` exactly (no tolerance: a negative
  height is rejected, never clipped);
- bounds that are scale-invariant divide the heights by their largest absolute value first (this
  removes the underflow and overflow tricks AlphaEvolve's candidates found, see AE2's
  autocorrelation notebook); all-zero heights are rejected;
- ``a * a`` is ``numpy.convolve(a, a)`` for n <= ``DIRECT_MAX`` and a zero-padded
  ``numpy.fft.rfft`` product above that (absolute error ~1e-15 of ``max|a|^2 * n``, far below any
  record gap).
"""

from __future__ import annotations

import numpy as np

from evolve.scoring import Rejected
from evolve.verify.reals import FloatArray, is_real, to_float_array

MAX_STEPS = 200_000
DIRECT_MAX = 8192


def parse_heights(
    output: object,
    max_steps: int = MAX_STEPS,
    *,
    noun: str = "height",
    listing: str = "step heights",
) -> FloatArray:
    """The candidate's heights as a finite 1-D float array, or :class:`Rejected` saying why not.

    Args:
        output: the candidate's return value after the JSON round trip.
        max_steps: the largest number of steps accepted.
        noun: one entry in the messages (``"height 3 is not finite"``); its plural adds an ``s``.
        listing: the entries together (``"expected a flat list of step heights"``).
    """
    if not isinstance(output, list | tuple):
        raise Rejected(f"expected a flat list of {listing}; got {type(output).__name__}")
    if not 1 <= len(output) <= max_steps:
        raise Rejected(f"expected between 1 and {max_steps} {listing}, got {len(output)}")
    for i, v in enumerate(output):
        if not is_real(v):
            raise Rejected(f"{noun} {i} is {v!r:.40}, not a real number (return a flat list)")
    a = to_float_array(output, f"{noun}s")
    bad = np.flatnonzero(~np.isfinite(a))
    if bad.size:
        raise Rejected(f"{noun} {bad[0]} is not finite ({a[bad[0]]})")
    return a


def require_non_negative(
    a: FloatArray, *, noun: str = "height", requirement: str = "f must be non-negative"
) -> None:
    """Raise :class:`Rejected` if any entry is ``< 0`` (exactly; ``-0.0`` passes).

    The message counts the negative entries, names the first and ends with ``requirement``.
    """
    neg = np.flatnonzero(a < 0)
    if neg.size:
        raise Rejected(
            f"{neg.size} negative {noun}(s), first at index {neg[0]} ({float(a[neg[0]])!r}); "
            f"{requirement}"
        )


def scale_to_unit_peak(a: FloatArray, *, signed: bool = False) -> FloatArray:
    """``a / max|a|``, so the largest absolute height is 1; :class:`Rejected` if all are zero.

    Args:
        a: finite heights.
        signed: whether f may take negative values; it only changes the message, which asks for
            a non-zero integral instead of a positive one.
    """
    peak = np.abs(a).max()
    if peak <= 0:
        integral = "non-zero" if signed else "positive"
        raise Rejected(f"all heights are zero; f must have a {integral} integral")
    scaled: FloatArray = a / peak
    return scaled


def parse_scaled_heights(
    output: object, *, signed: bool = False, max_steps: int = MAX_STEPS
) -> FloatArray:
    """The heights of a scale-invariant bound, ready to score: parsed, checked, divided by max|a|.

    Runs :func:`parse_heights`, then (unless ``signed``) :func:`require_non_negative`, then
    :func:`scale_to_unit_peak`; each raises :class:`Rejected` with its own message.
    """
    a = parse_heights(output, max_steps)
    if not signed:
        require_non_negative(a)
    return scale_to_unit_peak(a, signed=signed)


def fft_convolve(x: FloatArray, y: FloatArray) -> FloatArray:
    """The full linear convolution of ``x`` and ``y`` by a zero-padded ``numpy.fft.rfft`` product.

    The padded size is the next power of two above ``len(x) + len(y) - 1``.
    """
    m = len(x) + len(y) - 1
    size = 1 << m.bit_length()
    spectrum = np.fft.rfft(x, size)
    other = spectrum if y is x else np.fft.rfft(y, size)
    return np.fft.irfft(spectrum * other, size)[:m]


def autoconvolution(a: FloatArray, direct_max: int = DIRECT_MAX) -> FloatArray:
    """``numpy.convolve(a, a)``; by :func:`fft_convolve` when ``len(a) > direct_max``."""
    if len(a) <= direct_max:
        direct: FloatArray = np.convolve(a, a)
        return direct
    return fft_convolve(a, a)
