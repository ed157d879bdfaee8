"""Disjoint circles in the unit square: parse, verify and score a packing of any number n.

The candidate returns n rows ``[x, y, r]``. Everything is recomputed here in IEEE double
precision with numpy; nothing the candidate reports about itself is used.

Pinned check (``TOL = 1e-12``, absolute):

- shape: exactly ``n`` rows of exactly 3 real numbers (JSON ints or floats; booleans,
  strings and nulls are rejected), all finite;
- radii: ``r >= 0`` (a zero radius is allowed and contributes nothing; it must still lie in the
  square and outside every other circle);
- containment: ``x - r >= -TOL``, ``x + r <= 1 + TOL``, and the same for ``y``;
- disjointness: for every pair ``i < j``, with ``dx = x_i - x_j``, ``dy = y_i - y_j`` and
  ``dist = sqrt(dx*dx + dy*dy)`` (``numpy.sqrt`` of the sum of the two products, in that order),
  ``(r_i + r_j) - dist <= TOL``.

The score is ``sum_radii = math.fsum(r)``. The tolerance lets a packing gain at most about
``n * TOL / 2`` in the sum (~1.3e-11 for n = 26, ~1.6e-11 for n = 32), far below the 1e-8 gaps
between the published records. Published evaluators that allow 1e-6 overlaps (OpenEvolve,
ThetaEvolve) let each radius inflate by ~5e-7, worth ~n * 5e-7 in the sum (~1.3e-5 for n = 26,
~1.6e-5 for n = 32); that is why this one does not. The distance formula is pinned, not just the
tolerance: AlphaEvolve v2's 32-circle packing has a pair that is exact under this formula and
overlaps by 2.8e-17 under ``numpy.hypot`` (see ``problems/circle_packing_32/scorer.py``).
"""

from __future__ import annotations

import math

import numpy as np

from evolve.scoring import Rejected
from evolve.verify.reals import FloatArray, RowWording, parse_rows

TOL = 1e-12
CONTACT = 1e-6  # slack below which a circle counts as touching (reported, not scored)


def parse_circles(output: object, n: int) -> FloatArray:
    """The candidate's output as an ``(n, 3)`` float array, or :class:`Rejected` saying why not."""
    wording = RowWording(
        noun="circle",
        listing=f"{n} rows [x, y, r]",
        row="a row [x, y, r] of 3 numbers",
        entry="value",
    )
    return parse_rows(output, n, 3, wording)


def violations(circles: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per-circle wall overhang, the pair overlap matrix and the pairwise distances.

    Positive entries are violations: ``overhang[i] = max(r - x, x + r - 1, r - y, y + r - 1)``,
    ``overlap[i, j] = (r_i + r_j) - dist_ij`` (diagonal set to ``-inf``).
    """
    x, y, r = circles[:, 0], circles[:, 1], circles[:, 2]
    overhang = np.max(np.stack([r - x, x + r - 1.0, r - y, y + r - 1.0]), axis=0)
    dx = x[:, None] - x[None, :]
    dy = y[:, None] - y[None, :]
    dist = np.sqrt(dx * dx + dy * dy)
    overlap = (r[:, None] + r[None, :]) - dist
    np.fill_diagonal(overlap, -np.inf)
    return overhang, overlap, dist


def check_packing(circles: FloatArray, tol: float = TOL) -> tuple[FloatArray, FloatArray]:
    """Raise :class:`Rejected` naming the worst violation; return (overhang, overlap) otherwise.

    The checks run in order: negative radii, then containment, then disjointness, each with the
    absolute tolerance ``tol`` (radii have none: ``r >= 0`` exactly).
    """
    r = circles[:, 2]
    if (r < 0).any():
        i = int(np.argmin(r))
        raise Rejected(f"circle {i} has negative radius {float(r[i])!r}; radii must be >= 0")
    overhang, overlap, dist = violations(circles)
    n_out = int((overhang > tol).sum())
    if n_out:
        i = int(np.argmax(overhang))
        x, y, ri = circles[i].tolist()
        raise Rejected(
            f"{n_out} circle(s) stick out of the unit square; worst is circle {i} "
            f"(x={x!r}, y={y!r}, r={ri!r}) by {overhang[i]:.3e}; need r <= x <= 1-r and r <= y <= 1-r"
        )
    n_pairs = int((overlap[np.triu_indices(len(r), 1)] > tol).sum())
    if n_pairs:
        a, b = (int(v) for v in np.unravel_index(int(np.argmax(overlap)), overlap.shape))
        raise Rejected(
            f"{n_pairs} pair(s) of circles overlap; worst is circles {a} and {b} by "
            f"{overlap[a, b]:.3e} (distance {float(dist[a, b])!r} < r{a}+r{b} = {float(r[a] + r[b])!r}); "
            f"allowed overlap is {tol:g}"
        )
    return overhang, overlap


def summarize_packing(
    circles: FloatArray, overhang: FloatArray, overlap: FloatArray, best_known: float
) -> tuple[dict[str, float], str]:
    """Metrics and a feedback line for a valid packing (see the module docstring for the score)."""
    r = circles[:, 2]
    total = math.fsum(r.tolist())
    # How far each circle could grow with everything else fixed: its own actionable slack.
    room = np.minimum(-overhang, np.min(-overlap, axis=1))
    pairs = overlap[np.triu_indices(len(r), 1)]
    contacts = int((pairs > -CONTACT).sum() + (overhang > -CONTACT).sum())
    k = int(np.argmax(room))
    metrics = {
        "sum_radii": total,
        "min_radius": float(r.min()),
        "max_radius": float(r.max()),
        "radius_std": float(r.std()),
        "contacts": float(contacts),
    }
    feedback = (
        f"valid packing of {len(r)} circles: sum of radii {total:.10f} (best known {best_known}); "
        f"radii {r.min():.4f}..{r.max():.4f}; {contacts} contacts (pairs and walls within {CONTACT:g}); "
        f"circle {k} could still grow by {room[k]:.3e} with the others fixed"
    )
    return metrics, feedback


def score_packing(output: object, n: int, best_known: float) -> tuple[dict[str, float], str]:
    """Validate ``n`` circles strictly and return (metrics, feedback); :class:`Rejected` if invalid.

    Args:
        output: the candidate's return value after the JSON round trip.
        n: the required number of circles.
        best_known: the record sum of radii, quoted in the feedback.
    """
    circles = parse_circles(output, n)
    overhang, overlap = check_packing(circles)
    return summarize_packing(circles, overhang, overlap, best_known)
