"""Heilbronn problem: 11 points in a triangle, maximize the smallest triangle they form.

``run()`` returns 11 rows ``[x, y]`` inside the triangle with vertices (0, 0), (1, 0) and
(1/2, sqrt(3)/2). The starting points are scattered by hand.
"""

import numpy as np


# EVOLVE-BLOCK-START
def points():
    """The 11 points, each inside the triangle (0, 0), (1, 0), (1/2, sqrt(3)/2)."""
    return np.array([
        [0.44, 0.28], [0.85, 0.11], [0.56, 0.25], [0.27, 0.09],
        [0.62, 0.56], [0.65, 0.16], [0.73, 0.30], [0.76, 0.33],
        [0.25, 0.29], [0.51, 0.19], [0.62, 0.44],
    ])


def run():
    """The entry point: 11 rows [x, y]."""
    return points().tolist()
# EVOLVE-BLOCK-END
