"""Second autocorrelation inequality: a non-negative step function whose autoconvolution is flat.

``run()`` returns the heights of a step function with equal steps; the score is
||g||_2^2 / (||g||_1 ||g||_inf) for g = conv(a, a), which a constant function makes 2/3.
"""

import numpy as np


# EVOLVE-BLOCK-START
def heights():
    """Step heights, all >= 0; their number sets the resolution, their scale does not matter."""
    return np.array([
        1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
        1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
    ])


def run():
    """The entry point: a flat list of non-negative step heights."""
    return heights().tolist()
# EVOLVE-BLOCK-END
