"""Trusted scorer for ``heilbronn_triangle_11``: 11 points in a triangle, maximize the smallest area.

The candidate returns 11 rows ``[x, y]``. Everything is recomputed here in IEEE double precision;
nothing the candidate reports about itself is used.

The region is the equilateral triangle with vertices (0, 0), (1, 0), (1/2, sqrt(3)/2), as in the
AlphaEvolve notebook (google-deepmind/alphaevolve_results@4226acb, B.9). Pinned checks, with
``s3 = numpy.sqrt(3.0)`` and ``TOL = 1e-12`` (absolute):

- exactly 11 rows of 2 finite real numbers (parsed by :func:`evolve.verify.points.parse_points`);
- containment: ``y >= -TOL``, ``y - s3*x <= TOL`` and ``s3*x + y - s3 <= TOL``;
- every area ``|(x_b - x_a)*(y_c - y_a) - (x_c - x_a)*(y_b - y_a)| / 2`` over the C(11, 3) = 165
  triples is computed; the score is ``min_area = min(area) / (s3 / 4)``, the smallest area as a
  fraction of the triangle's area (so the score of a configuration does not depend on the
  triangle's size).

The AlphaEvolve construction (0.0365298899) satisfies the containment checks with zero slack. The
tolerance lets a point sit at most 1e-12 outside, which changes no area by more than ~1e-12,
eight orders of magnitude below the gap to the previous record (0.036).
"""

from __future__ import annotations

import itertools

import numpy as np

from evolve.scoring import Rejected
from evolve.verify.points import parse_points

N = 11
TOL = 1e-12
S3 = float(np.sqrt(3.0))
AREA = S3 / 4
BEST_KNOWN = 0.0365298899
EDGE = 1e-9  # distance-like slack for counting points on an edge (reported, not scored)
TRIPLES = np.array(list(itertools.combinations(range(N), 3)))


def edge_violations(pts: np.ndarray) -> np.ndarray:
    """``(3, n)``: how far each point is past the bottom, left and right edge (positive = outside)."""
    x, y = pts[:, 0], pts[:, 1]
    return np.stack([-y, y - S3 * x, S3 * x + y - S3])


def triangle_areas(pts: np.ndarray) -> np.ndarray:
    """The area of every triple in ``TRIPLES``, with the pinned formula."""
    a, b, c = pts[TRIPLES[:, 0]], pts[TRIPLES[:, 1]], pts[TRIPLES[:, 2]]
    cross = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    return np.abs(cross) / 2


def score(output: object) -> tuple[dict[str, float], str]:
    """Validate the points and return (metrics, feedback)."""
    pts = parse_points(output, N, 2, listing=f"{N} points [x, y]", row="[x, y]")
    viol = edge_violations(pts)
    outside = np.flatnonzero(viol.max(axis=0) > TOL)
    if outside.size:
        i = int(outside[np.argmax(viol.max(axis=0)[outside])])
        edge = ("bottom edge y >= 0", "left edge y <= sqrt(3)*x", "right edge y <= sqrt(3)*(1-x)")[
            int(np.argmax(viol[:, i]))
        ]
        raise Rejected(
            f"{outside.size} point(s) outside the triangle (0,0), (1,0), (1/2, sqrt(3)/2); worst is "
            f"point {i} = {pts[i].tolist()}, past the {edge} by {viol[:, i].max():.3e}"
        )
    areas = triangle_areas(pts) / AREA
    k = int(np.argmin(areas))
    smallest = float(areas[k])
    near = int((areas <= smallest * (1 + 1e-6) + 1e-15).sum())
    on_edge = int((viol.max(axis=0) > -EDGE).sum())
    metrics = {
        "min_area": smallest,
        "smallest_triangles": float(near),
        "boundary_points": float(on_edge),
    }
    feedback = (
        f"smallest triangle area {smallest:.10f} of the triangle's area (best known {BEST_KNOWN}), "
        f"formed by points {TRIPLES[k].tolist()}; {near} triangle(s) within 1e-6 of it; "
        f"{on_edge} point(s) on the boundary"
    )
    return metrics, feedback
