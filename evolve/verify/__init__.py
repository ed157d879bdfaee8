"""Trusted verifiers shared by the shipped problems' scorers.

A problem's ``scorer.py`` runs in the trusted scorer process, on the candidate's JSON output, and
recomputes every number itself (see :mod:`evolve.scoring`). The checks that several problems
share live here, each with its formula, tolerance and source pinned in its module docstring, so
that a scorer is a thin wrapper that passes its parameters (the number of circles, the
dimension, the record):

- :mod:`evolve.verify.reals`: JSON numbers into finite float64 arrays;
- :mod:`evolve.verify.circles`: disjoint circles in the unit square, for any n;
- :mod:`evolve.verify.points`: points in R^d, pairwise squared distances, the distance ratio;
- :mod:`evolve.verify.step_functions`: step heights, their sign, normalization, autoconvolution.

Candidate programs never import this package: they run in the sandbox and only return data.
"""

from evolve.verify.circles import check_packing, parse_circles, score_packing
from evolve.verify.points import parse_points, score_distance_ratio, squared_distances
from evolve.verify.reals import FloatArray, RowWording, is_real, parse_rows, to_float_array
from evolve.verify.step_functions import (
    autoconvolution,
    fft_convolve,
    parse_heights,
    parse_scaled_heights,
    require_non_negative,
    scale_to_unit_peak,
)

__all__ = [
    "FloatArray",
    "RowWording",
    "autoconvolution",
    "check_packing",
    "fft_convolve",
    "is_real",
    "parse_circles",
    "parse_heights",
    "parse_points",
    "parse_rows",
    "parse_scaled_heights",
    "require_non_negative",
    "scale_to_unit_peak",
    "score_distance_ratio",
    "score_packing",
    "squared_distances",
    "to_float_array",
]
