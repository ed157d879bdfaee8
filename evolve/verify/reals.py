"""Reading a candidate's JSON numbers into finite float64 arrays, and rejecting anything else.

A trusted scorer receives the candidate's return value after a JSON round trip: lists, numbers,
strings, booleans and nulls. Only real numbers are accepted (JSON ints and floats; a boolean is
rejected although Python counts it as an int). They are converted to IEEE double precision with
numpy, and a value that does not fit (an int beyond the float range) or is not finite (NaN, inf)
is rejected. Every :class:`~evolve.scoring.Rejected` message names the first offender, in terms
the LLM can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from evolve.scoring import Rejected

FloatArray: TypeAlias = npt.NDArray[np.float64]
IndexArray: TypeAlias = npt.NDArray[np.intp]


def is_real(value: object) -> bool:
    """Whether ``value`` is a JSON number: an ``int`` or a ``float``, but not a ``bool``."""
    return not isinstance(value, bool) and isinstance(value, int | float)


def to_float_array(values: list[object] | tuple[object, ...], plural: str) -> FloatArray:
    """``numpy.array(values, dtype=float64)``, or :class:`Rejected` if a value does not fit.

    ``plural`` names the values in the message: ``"{plural} are not representable as floats"``.
    """
    try:
        return np.array(values, dtype=np.float64)
    except (OverflowError, ValueError) as exc:
        raise Rejected(f"{plural} are not representable as floats: {exc}") from None


@dataclass(frozen=True)
class RowWording:
    """How the messages of :func:`parse_rows` name the rows and their entries.

    Attributes:
        noun: one row, as in ``"circle 3: ..."``; its plural adds an ``s``
            (``"expected exactly 26 circles"``).
        listing: what the whole output should be, after ``"expected a list of "``
            (``"26 rows [x, y, r]"``).
        row: what one row should be, after ``"expected "`` (``"a row [x, y, r] of 3 numbers"``).
        entry: one entry of a row, as in ``"has a non-finite value"``.
    """

    noun: str
    listing: str
    row: str
    entry: str


def parse_rows(output: object, n: int, width: int, wording: RowWording) -> FloatArray:
    """The candidate's output as a finite ``(n, width)`` float array, or :class:`Rejected`.

    Checks, in order: a list (or tuple) of exactly ``n`` rows; each row a list of exactly
    ``width`` real numbers (:func:`is_real`); representable as float64; every entry finite.
    """
    if not isinstance(output, list | tuple):
        raise Rejected(f"expected a list of {wording.listing}; got {type(output).__name__}")
    if len(output) != n:
        raise Rejected(f"expected exactly {n} {wording.noun}s, got {len(output)}")
    for i, row in enumerate(output):
        if not isinstance(row, list | tuple) or len(row) != width:
            raise Rejected(f"{wording.noun} {i}: expected {wording.row}, got {row!r:.80}")
        for v in row:
            if not is_real(v):
                raise Rejected(f"{wording.noun} {i}: {v!r:.40} is not a real number")
    arr = to_float_array(output, f"{wording.noun}s")
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if bad.size:
        raise Rejected(
            f"{wording.noun} {bad[0]} has a non-finite {wording.entry}: {arr[bad[0]].tolist()}"
        )
    return arr
