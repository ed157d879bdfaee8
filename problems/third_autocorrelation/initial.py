"""Third autocorrelation inequality (max|f*f| variant): a real step function with a small |f*f| peak.

``run()`` returns the heights of a step function with equal steps on [-1/4, 1/4]; the score is
2n * max(abs(conv(a, a))) / sum(a)^2, which a constant function makes 2.
"""

import numpy as np


# EVOLVE-BLOCK-START
def heights():
    """Step heights (any sign, non-zero sum); their number sets the resolution, not their scale."""
    return np.array([
        1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
        1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
    ])


def run():
    """The entry point: a flat list of real step heights."""
    return heights().tolist()
# EVOLVE-BLOCK-END
