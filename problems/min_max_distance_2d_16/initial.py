"""16 points in the plane with the smallest possible (max distance / min distance)^2.

``run()`` returns 16 rows ``[x, y]``. The starting layout is a centre point with concentric
rings of 5 and 10 points around it.
"""

import numpy as np


# EVOLVE-BLOCK-START
def points():
    """The 16 points; only their shape matters (the ratio ignores translation, rotation, scale)."""
    inner_radius = 1.0
    outer_radius = 2.0
    twist = 0.0  # rotation of the outer ring, in radians
    pts = [[0.0, 0.0]]
    for k in range(5):
        angle = 2 * np.pi * k / 5
        pts.append([inner_radius * np.cos(angle), inner_radius * np.sin(angle)])
    for k in range(10):
        angle = 2 * np.pi * k / 10 + twist
        pts.append([outer_radius * np.cos(angle), outer_radius * np.sin(angle)])
    return np.array(pts)


def run():
    """The entry point: 16 rows [x, y]."""
    return points().tolist()
# EVOLVE-BLOCK-END
