"""First autocorrelation inequality: a non-negative step function with a small autoconvolution peak.

``run()`` returns the heights of a step function with equal steps on [-1/4, 1/4]; the score is
2n * max(conv(a, a)) / sum(a)^2, which a constant function makes 2.
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
