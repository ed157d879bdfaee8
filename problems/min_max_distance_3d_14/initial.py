"""14 points in space with the smallest possible (max distance / min distance)^2.

``run()`` returns 14 rows ``[x, y, z]``. The starting layout is two poles and two twisted
hexagons between them.
"""

import numpy as np


# EVOLVE-BLOCK-START
def points():
    """The 14 points; only their shape matters (the ratio ignores translation, rotation, scale)."""
    ring_radius = 1.0
    ring_height = 0.5  # the hexagons sit at z = -ring_height and z = +ring_height
    pole_height = 1.2
    twist = 0.5  # rotation of the upper hexagon, in radians
    pts = [[0.0, 0.0, -pole_height], [0.0, 0.0, pole_height]]
    for k in range(6):
        angle = 2 * np.pi * k / 6
        pts.append([ring_radius * np.cos(angle), ring_radius * np.sin(angle), -ring_height])
    for k in range(6):
        angle = 2 * np.pi * k / 6 + twist
        pts.append([ring_radius * np.cos(angle), ring_radius * np.sin(angle), ring_height])
    return np.array(pts)


def run():
    """The entry point: 14 rows [x, y, z]."""
    return points().tolist()
# EVOLVE-BLOCK-END
