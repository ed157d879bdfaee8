"""Trusted scorer for ``cap_set_8``: the size of a cap set in F_3^8 (FunSearch).

A cap set is a set of vectors in F_3^n with no three distinct points on a line; equivalently no
three distinct x, y, z with ``x + y + z = 0 (mod 3)`` coordinatewise. The candidate runs its own
greedy construction (FunSearch's skeleton around an evolved priority function) in the sandbox and
returns the set it built; this scorer verifies that set from scratch and never trusts the
heuristic.

Pinned checks, exact integer arithmetic:

- the output is a list of 1..3**8 vectors, each a list of 8 integers in {0, 1, 2};
- the vectors are distinct;
- no line: for every pair ``x != y`` of the set, the third point of their line,
  ``z = (-x - y) mod 3`` (distinct from both whenever ``x != y``), must not be in the set. This
  is checked for all pairs at once, vectorised: vectors are encoded as base-3 integers and looked
  up in a membership table of size 3**8, in row blocks so memory stays bounded.

Best known for n = 8: 512 (FunSearch, Romera-Paredes et al., Nature 2023); previous record 496,
as reported there. The FunSearch skeleton with ``priority = 0`` gives 2**8 = 256.
"""

from __future__ import annotations

import numpy as np

from evolve.scoring import Rejected

N = 8
SPACE = 3**N
POWERS = 3 ** np.arange(N - 1, -1, -1, dtype=np.int64)
BLOCK_ELEMENTS = 4_000_000  # pairs x coordinates per block of the line check
BEST_KNOWN = 512


def parse_vectors(output: object) -> np.ndarray:
    """The candidate's vectors as an ``(m, N)`` int array, or :class:`Rejected` saying why not."""
    if not isinstance(output, list | tuple):
        raise Rejected(f"expected a list of vectors of length {N}; got {type(output).__name__}")
    if not 1 <= len(output) <= SPACE:
        raise Rejected(f"expected between 1 and {SPACE} vectors, got {len(output)}")
    for i, row in enumerate(output):
        if not isinstance(row, list | tuple) or len(row) != N:
            raise Rejected(f"vector {i}: expected {N} entries in {{0, 1, 2}}, got {row!r:.80}")
        for v in row:
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 2:
                raise Rejected(f"vector {i}: entry {v!r:.40} is not one of the integers 0, 1, 2")
    return np.array(output, dtype=np.int64)


def find_line(vectors: np.ndarray) -> tuple[int, int, int] | None:
    """Indices ``(i, j, k)`` of three distinct vectors on a line, or None for a cap set."""
    codes = vectors @ POWERS
    index = np.full(SPACE, -1, dtype=np.int64)
    index[codes] = np.arange(len(codes))
    m = len(vectors)
    rows = max(1, BLOCK_ELEMENTS // (m * N))
    for start in range(0, m, rows):
        x = vectors[start : start + rows, None, :]
        third = ((-(x + vectors[None, :, :])) % 3) @ POWERS  # (rows, m)
        hit = index[third]
        i_off = np.arange(start, start + len(x))[:, None]
        j = np.arange(m)[None, :]
        bad = (hit >= 0) & (j != i_off)
        if bad.any():
            a, b = np.argwhere(bad)[0]
            return int(start + a), int(b), int(hit[a, b])
    return None


def score(output: object) -> tuple[dict[str, float], str]:
    """Verify the cap set and return (metrics, feedback)."""
    vectors = parse_vectors(output)
    codes = vectors @ POWERS
    uniq, counts = np.unique(codes, return_counts=True)
    if (counts > 1).any():
        code = uniq[np.argmax(counts > 1)]
        dup = np.flatnonzero(codes == code)[:2].tolist()
        raise Rejected(
            f"vectors {dup[0]} and {dup[1]} are equal ({vectors[dup[0]].tolist()}); a set has no repeats"
        )
    line = find_line(vectors)
    if line is not None:
        i, j, k = line
        raise Rejected(
            f"not a cap set: vectors {i}, {j} and {k} ({vectors[i].tolist()}, {vectors[j].tolist()}, "
            f"{vectors[k].tolist()}) lie on a line (they sum to 0 mod 3 in every coordinate)"
        )
    m = len(vectors)
    nonzeros = float((vectors != 0).sum(axis=1).mean())
    metrics = {"size": float(m), "mean_nonzeros": nonzeros}
    feedback = (
        f"valid cap set of size {m} in F_3^{N} (best known {BEST_KNOWN}; 2^{N} = {2**N} is the "
        f"trivial {{0,1}}^{N}); vectors have {nonzeros:.2f} non-zero entries on average"
    )
    return metrics, feedback
