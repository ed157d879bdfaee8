"""Cap set in F_3^8, built greedily in the order an evolved priority function gives (FunSearch).

``run()`` returns the cap set as a list of vectors with entries 0, 1, 2. The skeleton below is
FunSearch's: every vector of F_3^n gets a priority; the highest-priority vector that keeps the
set free of lines is added until none is left. Only ``priority`` is evolved.
"""

import itertools

import numpy as np

N = 8


# EVOLVE-BLOCK-START
def priority(el, n):
    """How much we want to add the vector `el` (a tuple of n entries 0, 1, 2) to the cap set."""
    weights = (1.0, 1.0, 1.0)  # reward for each entry equal to 0, 1, 2
    mirror = 0.0  # reward for each coordinate pair el[i] == el[n - 1 - i]
    score = sum(weights[v] for v in el)
    score += mirror * sum(el[i] == el[n - 1 - i] for i in range(n // 2))
    return score
# EVOLVE-BLOCK-END


def solve(n):
    """Greedy cap set: repeatedly add the highest-priority vector and block the lines it closes."""
    all_vectors = np.array(list(itertools.product((0, 1, 2), repeat=n)), dtype=np.int32)
    powers = 3 ** np.arange(n - 1, -1, -1)  # index of a vector = vector @ powers
    priorities = np.array([priority(tuple(int(v) for v in vector), n) for vector in all_vectors], dtype=float)
    capset = np.empty((0, n), dtype=np.int32)
    while np.any(priorities != -np.inf):
        best = int(np.argmax(priorities))
        vector = all_vectors[None, best]
        blocking = ((-capset - vector) % 3) @ powers  # third points of lines through `vector`
        priorities[blocking] = -np.inf
        priorities[best] = -np.inf
        capset = np.concatenate([capset, vector], axis=0)
    return capset


def run():
    """The entry point: the cap set in F_3^8 as a list of vectors."""
    return solve(N).tolist()
