"""Circle packing: place 32 disjoint circles in the unit square to maximize the sum of radii.

``run()`` returns 32 rows ``[x, y, r]``. The starting layout is a rough grid of centres; the
helper ``radii`` turns any centres into radii that form a valid packing.
"""

import numpy as np


def radii(xy, sweeps=20):
    """Largest radii this simple scheme finds for fixed centres; always a valid packing.

    Start from the distance to the nearest wall, shrink every overlapping pair in proportion
    (one pass over the pairs makes the packing valid, since radii only shrink), then grow each
    circle in turn into the room its neighbours leave.
    """
    n = len(xy)
    wall = np.clip(np.minimum(np.minimum(xy[:, 0], 1 - xy[:, 0]), np.minimum(xy[:, 1], 1 - xy[:, 1])), 0, None)
    dist = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=-1))
    r = wall.copy()
    for i in range(n):
        for j in range(i + 1, n):
            if r[i] + r[j] > dist[i, j]:
                scale = dist[i, j] / (r[i] + r[j])
                r[i] *= scale
                r[j] *= scale
    np.fill_diagonal(dist, np.inf)
    for _ in range(sweeps):
        for i in range(n):
            r[i] = max(0.0, min(wall[i], np.min(dist[i] - r)))
    return r


# EVOLVE-BLOCK-START
def centres():
    """Centre coordinates (x, y) of the 32 circles, all inside the unit square."""
    return np.array([
        [0.284, 0.14], [0.428, 0.14], [0.572, 0.14], [0.716, 0.14],
        [0.14, 0.284], [0.284, 0.284], [0.428, 0.284], [0.572, 0.284], [0.716, 0.284], [0.86, 0.284],
        [0.14, 0.428], [0.284, 0.428], [0.428, 0.428], [0.572, 0.428], [0.716, 0.428], [0.86, 0.428],
        [0.14, 0.572], [0.284, 0.572], [0.428, 0.572], [0.572, 0.572], [0.716, 0.572], [0.86, 0.572],
        [0.14, 0.716], [0.284, 0.716], [0.428, 0.716], [0.572, 0.716], [0.716, 0.716], [0.86, 0.716],
        [0.284, 0.86], [0.428, 0.86], [0.572, 0.86], [0.716, 0.86],
    ])


def run():
    """The entry point: 32 rows [x, y, r]."""
    xy = np.clip(centres(), 0.0, 1.0)
    r = radii(xy) * (1 - 1e-12)
    return np.column_stack([xy, r]).tolist()
# EVOLVE-BLOCK-END
