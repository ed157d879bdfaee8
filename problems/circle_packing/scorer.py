"""Trusted scorer for ``circle_packing``: 26 disjoint circles in the unit square, sum of radii.

The candidate returns 26 rows ``[x, y, r]``. Everything is recomputed here in IEEE double
precision with numpy; nothing the candidate reports about itself is used.

Pinned check (``TOL = 1e-12``, absolute):

- shape: exactly ``N = 26`` rows of exactly 3 real numbers (JSON ints or floats; booleans,
  strings and nulls are rejected), all finite;
- radii: ``r >= 0`` (a zero radius is allowed and contributes nothing; it must still lie in the
  square and outside every other circle);
- containment: ``x - r >= -TOL``, ``x + r <= 1 + TOL``, and the same for ``y``;
- disjointness: for every pair ``i < j``, with ``dx = x_i - x_j``, ``dy = y_i - y_j`` and
  ``dist = sqrt(dx*dx + dy*dy)`` (``numpy.sqrt`` of the sum of the two products, in that order),
  ``(r_i + r_j) - dist <= TOL``.

The score is ``sum_radii = math.fsum(r)``. The tolerance lets a packing gain at most about
``N * TOL / 2 ~ 1.3e-11`` in the sum, far below the 1e-8 gaps between the published records. The
AlphaEvolve constructions pass with zero slack: v1 2.6358627564 (google-deepmind/alphaevolve_results
@4226acb, B.12) and v2 2.6359830849 (google-deepmind/alphaevolve_repository_of_problems@81f828f,
``packing_circle_max_sum_of_radii.ipynb``). Published evaluators that allow 1e-6 overlaps (OpenEvolve,
ThetaEvolve) let each radius inflate by ~5e-7, worth ~1.3e-5 in the sum; that is why this one does not.
"""

from __future__ import annotations

import math

import numpy as np

from evolve.scoring import Rejected

N = 26
TOL = 1e-12
BEST_KNOWN = 2.6359830849
CONTACT = 1e-6  # slack below which a circle counts as touching (reported, not scored)


def parse_circles(output: object, n: int) -> np.ndarray:
    """The candidate's output as an ``(n, 3)`` float array, or :class:`Rejected` saying why not."""
    if not isinstance(output, list | tuple):
        raise Rejected(f"expected a list of {n} rows [x, y, r]; got {type(output).__name__}")
    if len(output) != n:
        raise Rejected(f"expected exactly {n} circles, got {len(output)}")
    for i, row in enumerate(output):
        if not isinstance(row, list | tuple) or len(row) != 3:
            raise Rejected(f"circle {i}: expected a row [x, y, r] of 3 numbers, got {row!r:.80}")
        for v in row:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise Rejected(f"circle {i}: {v!r:.40} is not a real number")
    try:
        arr = np.array(output, dtype=np.float64)
    except (OverflowError, ValueError) as exc:
        raise Rejected(f"circles are not representable as floats: {exc}") from None
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if bad.size:
        raise Rejected(f"circle {bad[0]} has a non-finite value: {arr[bad[0]].tolist()}")
    return arr


def violations(circles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def check_packing(circles: np.ndarray, tol: float = TOL) -> tuple[np.ndarray, np.ndarray]:
    """Raise :class:`Rejected` naming the worst violation; return (overhang, overlap) otherwise."""
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
        i, j = np.unravel_index(int(np.argmax(overlap)), overlap.shape)
        raise Rejected(
            f"{n_pairs} pair(s) of circles overlap; worst is circles {i} and {j} by "
            f"{overlap[i, j]:.3e} (distance {float(dist[i, j])!r} < r{i}+r{j} = {float(r[i] + r[j])!r}); "
            f"allowed overlap is {tol:g}"
        )
    return overhang, overlap


def summarize(
    circles: np.ndarray, overhang: np.ndarray, overlap: np.ndarray
) -> tuple[dict[str, float], str]:
    """Metrics and a feedback line for a valid packing."""
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
        f"valid packing of {len(r)} circles: sum of radii {total:.10f} (best known {BEST_KNOWN}); "
        f"radii {r.min():.4f}..{r.max():.4f}; {contacts} contacts (pairs and walls within {CONTACT:g}); "
        f"circle {k} could still grow by {room[k]:.3e} with the others fixed"
    )
    return metrics, feedback


def score(output: object) -> tuple[dict[str, float], str]:
    """Validate the candidate's circles strictly and return (metrics, feedback)."""
    circles = parse_circles(output, N)
    overhang, overlap = check_packing(circles)
    return summarize(circles, overhang, overlap)
