"""evolve.verify.reals: JSON numbers into finite float64 arrays, with messages naming the offender."""

from __future__ import annotations

import math

import numpy as np
import pytest

import evolve.verify
from evolve.scoring import Rejected
from evolve.verify.reals import RowWording, is_real, parse_rows, to_float_array

WORDING = RowWording(noun="thing", listing="3 things [a, b]", row="[a, b]", entry="part")


def test_public_api_is_importable():
    for name in evolve.verify.__all__:
        assert hasattr(evolve.verify, name), name


@pytest.mark.parametrize("value", [0, -3, 2**70, 0.5, -0.0, math.nan, math.inf])
def test_ints_and_floats_are_real(value):
    assert is_real(value)


@pytest.mark.parametrize("value", [True, False, None, "1.0", [1.0], {"x": 1}, 1j])
def test_booleans_strings_nulls_and_containers_are_not_real(value):
    assert not is_real(value)


def test_to_float_array_rejects_ints_beyond_the_float_range():
    with pytest.raises(Rejected, match=r"^things are not representable as floats: "):
        to_float_array([1.0, 10**400], "things")


def test_parse_rows_returns_a_float64_array_of_the_given_shape():
    arr = parse_rows([[0, 1], (2.5, -3)], 2, 2, WORDING)
    assert arr.dtype == np.float64
    assert arr.tolist() == [[0.0, 1.0], [2.5, -3.0]]


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (None, "expected a list of 3 things [a, b]; got NoneType"),
        ({"a": 1}, "expected a list of 3 things [a, b]; got dict"),
        ([[0, 0]] * 2, "expected exactly 3 things, got 2"),
        ([[0, 0], [0, 0, 0], [0, 0]], "thing 1: expected [a, b], got [0, 0, 0]"),
        ([[0, 0], [0, 0], 5], "thing 2: expected [a, b], got 5"),
        ([[0, 0], [True, 0], [0, 0]], "thing 1: True is not a real number"),
        ([[0, "1"], [0, 0], [0, 0]], "thing 0: '1' is not a real number"),
        ([[0, 0], [0, 0], [0, math.inf]], "thing 2 has a non-finite part: [0.0, inf]"),
        ([[math.nan, 0], [0, math.nan], [0, 0]], "thing 0 has a non-finite part: [nan, 0.0]"),
    ],
)
def test_parse_rows_rejects_with_the_worded_reason(output, message):
    with pytest.raises(Rejected) as err:
        parse_rows(output, 3, 2, WORDING)
    assert str(err.value) == message


def test_parse_rows_truncates_a_long_row_in_the_message():
    with pytest.raises(Rejected) as err:
        parse_rows([[0.123456789] * 50, [0, 0], [0, 0]], 3, 2, WORDING)
    assert len(str(err.value)) == len("thing 0: expected [a, b], got ") + 80
