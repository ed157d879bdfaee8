"""evolve.verify.step_functions: heights parsed, sign checked, scaled, and autoconvolved."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evolve.scoring import Rejected
from evolve.verify.step_functions import (
    DIRECT_MAX,
    MAX_STEPS,
    autoconvolution,
    fft_convolve,
    parse_heights,
    parse_scaled_heights,
    require_non_negative,
    scale_to_unit_peak,
)


def test_limits_are_pinned():
    assert MAX_STEPS == 200_000
    assert DIRECT_MAX == 8192


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ({"heights": [1.0]}, "expected a flat list of step heights; got dict"),
        ([], "expected between 1 and 200000 step heights, got 0"),
        ([1.0, [2.0]], "height 1 is [2.0], not a real number (return a flat list)"),
        ([False], "height 0 is False, not a real number (return a flat list)"),
        ([1.0, math.inf, math.nan], "height 1 is not finite (inf)"),
    ],
)
def test_parse_heights_rejects_with_the_reason(output, message):
    with pytest.raises(Rejected) as err:
        parse_heights(output)
    assert str(err.value) == message


def test_parse_heights_custom_wording_and_limit():
    assert parse_heights([0, 1, 2.5], 3).tolist() == [0.0, 1.0, 2.5]
    with pytest.raises(Rejected) as err:
        parse_heights([0.5] * 4, 3, noun="value", listing="values of h")
    assert str(err.value) == "expected between 1 and 3 values of h, got 4"
    with pytest.raises(Rejected) as err:
        parse_heights([10**400], noun="value", listing="values of h")
    assert str(err.value).startswith("values are not representable as floats: ")


def test_non_negative_means_exactly_non_negative():
    require_non_negative(np.array([0.0, -0.0, 1.0]))
    with pytest.raises(Rejected) as err:
        require_non_negative(np.array([1.0, -1e-300, 2.0, -3.0]))
    assert str(err.value) == (
        "2 negative height(s), first at index 1 (-1e-300); f must be non-negative"
    )
    with pytest.raises(Rejected, match=r"^1 negative value\(s\), .*; h is bounded$"):
        require_non_negative(np.array([-1.0]), noun="value", requirement="h is bounded")


def test_scale_to_unit_peak_divides_by_the_largest_absolute_value():
    assert scale_to_unit_peak(np.array([1.0, 4.0, 2.0])).tolist() == [0.25, 1.0, 0.5]
    assert scale_to_unit_peak(np.array([1.0, -4.0]), signed=True).tolist() == [0.25, -1.0]
    tiny = scale_to_unit_peak(np.array([1e-320, 2e-320]))
    assert tiny.max() == 1.0
    with pytest.raises(Rejected, match=r"^all heights are zero; f must have a positive integral$"):
        scale_to_unit_peak(np.zeros(3))
    with pytest.raises(Rejected, match=r"^all heights are zero; f must have a non-zero integral$"):
        scale_to_unit_peak(np.array([0.0, -0.0]), signed=True)


def test_parse_scaled_heights_checks_the_sign_unless_signed():
    assert parse_scaled_heights([0, 2, 1]).tolist() == [0.0, 1.0, 0.5]
    with pytest.raises(Rejected, match=r"^1 negative height\(s\), first at index 1 \(-1\.0\)"):
        parse_scaled_heights([2, -1])
    assert parse_scaled_heights([2, -4], signed=True).tolist() == [0.5, -1.0]
    with pytest.raises(Rejected, match="non-zero integral"):
        parse_scaled_heights([0.0], signed=True)
    with pytest.raises(Rejected, match="between 1 and 2 step heights"):
        parse_scaled_heights([1, 1, 1], max_steps=2)


@pytest.mark.parametrize(("nx", "ny"), [(1, 1), (5, 3), (100, 257), (1000, 1000)])
def test_fft_convolve_matches_numpy_convolve(nx, ny):
    rng = np.random.default_rng(nx * ny)
    x, y = rng.uniform(-1, 1, nx), rng.uniform(-1, 1, ny)
    expected = np.convolve(x, y)
    got = fft_convolve(x, y)
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) < 1e-12 * max(nx, ny)


def test_autoconvolution_is_numpy_convolve_up_to_direct_max_then_fft():
    rng = np.random.default_rng(3)
    a = rng.uniform(0, 1, 300)
    assert np.array_equal(autoconvolution(a), np.convolve(a, a))
    assert np.array_equal(autoconvolution(a, direct_max=300), np.convolve(a, a))
    fast = autoconvolution(a, direct_max=299)
    assert np.array_equal(fast, fft_convolve(a, a.copy()))
    assert np.max(np.abs(fast - np.convolve(a, a))) < 1e-12
