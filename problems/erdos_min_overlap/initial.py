"""Erdős minimum overlap: a step function h on [0, 2] with values in [0, 1] and integral 1.

``run()`` returns the values of h on equal steps; the scorer rescales them to integral 1 and
scores max_k correlate(h, 1 - h)[k] * 2 / n, which h = 1/2 everywhere makes 0.5.
"""

import numpy as np


# EVOLVE-BLOCK-START
def values():
    """Values of h on equal steps of [0, 2]; they must stay in [0, 1] after scaling to integral 1."""
    return np.array([
        0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5,
        0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5,
    ])


def run():
    """The entry point: a flat list of the values of h."""
    return values().tolist()
# EVOLVE-BLOCK-END
