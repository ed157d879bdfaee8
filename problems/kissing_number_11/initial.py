"""Kissing configuration in 11 dimensions, certified by integer points (AlphaEvolve's lemma).

``run()`` returns integer points x in Z^11, none of them 0, with |x - y|^2 >= max |x|^2 for every
pair; the unit spheres at 2x/|x| then all kiss the unit sphere at the origin. The starting set
is built greedily from the vectors with two entries +-1 (the D11 root system, 220 points).
"""

import itertools

import numpy as np


# EVOLVE-BLOCK-START
def candidates():
    """Integer vectors to try, in order: every vector with `weight` entries equal to +1 or -1."""
    weight = 2
    out = []
    for support in itertools.combinations(range(11), weight):
        for signs in itertools.product((1, -1), repeat=weight):
            v = [0] * 11
            for i, s in zip(support, signs):
                v[i] = s
            out.append(v)
    return np.array(out, dtype=np.int64)


def run():
    """Keep each candidate that leaves every pair at least max |x|^2 apart."""
    kept = np.zeros((0, 11), dtype=np.int64)
    max_norm = 0
    min_dist = np.inf
    for v in candidates():
        norm = int(v @ v)
        if norm == 0:
            continue
        closest = min(((kept - v) ** 2).sum(axis=1), default=np.inf)
        if min(closest, min_dist) >= max(norm, max_norm):
            kept = np.vstack([kept, v])
            max_norm, min_dist = max(norm, max_norm), min(closest, min_dist)
    return kept.tolist()
# EVOLVE-BLOCK-END
