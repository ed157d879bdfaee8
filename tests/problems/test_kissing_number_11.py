"""kissing_number_11: the 593-point certificate verified exactly, near misses rejected."""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import pytest

from evolve.problem import load_problem
from evolve.scoring import Rejected

PROBLEMS = Path(__file__).resolve().parents[2] / "problems"
PROBLEM = "kissing_number_11"


@pytest.fixture(scope="module")
def scorer(load_scorer):
    return load_scorer(PROBLEM)


@pytest.fixture(scope="module")
def published(reference):
    return reference("kissing_d11.json")["points"]


def _norm(x):
    return sum(v * v for v in x)


def test_problem_folder_loads():
    problem = load_problem(PROBLEMS / PROBLEM)
    assert problem.spec.metrics.primary == "size"
    assert problem.spec.best_known is not None
    assert problem.spec.best_known.value == 593


def test_verifies_the_593_construction_quickly(scorer, published):
    start = time.perf_counter()
    metrics, _ = scorer.score(published)
    assert time.perf_counter() - start < 2.0
    assert metrics["size"] == 593
    assert metrics["distinct_norms"] == 593  # not a single shell, and still valid


def test_rejects_the_largest_point_pushed_outward(scorer, published):
    pts = [list(p) for p in published]
    big = max(range(len(pts)), key=lambda i: _norm(pts[i]))
    k = max(range(11), key=lambda c: abs(pts[big][c]))
    pts[big][k] += 3 if pts[big][k] > 0 else -3  # ~5e13 on a squared norm of 1e26
    with pytest.raises(Rejected, match="too close"):
        scorer.score(pts)


def test_rejects_the_closest_pair_moved_two_units_together(scorer, published):
    pts = [list(p) for p in published]
    pairs = ((i, j) for i in range(len(pts)) for j in range(i + 1, len(pts)))
    i, j = min(
        pairs, key=lambda p: sum((a - b) ** 2 for a, b in zip(pts[p[0]], pts[p[1]], strict=True))
    )
    pts[i] = [a + 2 * ((b > a) - (b < a)) for a, b in zip(pts[i], pts[j], strict=True)]
    with pytest.raises(Rejected, match="too close"):
        scorer.score(pts)


def _sum_of_squares(target, slots):
    """Greedy: ``slots`` non-negative ints whose squares sum to ``target``, or None."""
    out = []
    for _ in range(slots):
        root = math.isqrt(target)
        out.append(root)
        target -= root * root
    return out if target == 0 else None


def test_exact_arithmetic_catches_a_deficit_of_one_at_scale_1e26(scorer):
    # p1 = (N, 0, ..., 0); p2 = p1 + v with |v|^2 = N^2 - 1 and |p2|^2 <= N^2: one unit short of
    # valid, which float64 cannot see at this magnitude.
    for n in range(10**13, 10**13 + 1000, 2):
        a = n // 2
        rest = _sum_of_squares(n * n - 1 - a * a, 10)
        if rest is not None:
            break
    else:
        pytest.fail("no decomposition found")
    p1 = [n] + [0] * 10
    p2 = [n - a, *rest]
    assert _norm(p2) <= n * n
    assert _norm([x - y for x, y in zip(p1, p2, strict=True)]) == n * n - 1
    with pytest.raises(Rejected, match=f"= {n * n - 1} < max"):
        scorer.score([p1, p2])
    assert float(n * n - 1) == float(n * n)  # float64 sees no difference at all


def test_rejects_origin_duplicates_and_non_integers(scorer, published):
    pts = [list(p) for p in published]
    with pytest.raises(Rejected, match="origin"):
        scorer.score([*pts[:5], [0] * 11])
    with pytest.raises(Rejected, match="are equal"):
        scorer.score([*pts[:5], pts[2]])
    with pytest.raises(Rejected, match="not an integer"):
        scorer.score([[0.5] + [0] * 10])
    with pytest.raises(Rejected, match="11 integer coordinates"):
        scorer.score([[1] * 10])
    with pytest.raises(Rejected, match="exceeds 2\\*\\*50"):
        scorer.score([[2**51] + [0] * 10])


def test_accepts_whole_floats_and_scaled_copies(scorer, published):
    assert scorer.score([[2.0] + [0.0] * 10])[0]["size"] == 1
    doubled = [[2 * v for v in p] for p in published[:50]]
    assert scorer.score(doubled)[0]["size"] == 50


def test_initial_program_is_the_d11_root_system(scorer, run_initial):
    metrics, _ = scorer.score(run_initial(PROBLEM))
    assert metrics["size"] == 220


def _cluster(count, seed):
    """``count`` distinct points near 2**49 e_1: every pair far too close (a hopeless input)."""
    rng = random.Random(seed)
    return [[2**49] + [rng.randrange(-(2**20), 2**20) for _ in range(10)] for _ in range(count)]


def test_rejects_a_2000_point_input_at_its_first_violation_quickly(scorer):
    # All ~2e6 pairs violate; checking each in Python ints before reporting took seconds.
    start = time.perf_counter()
    with pytest.raises(Rejected, match=r"^points 0 and 1 are too close"):
        scorer.score(_cluster(scorer.MAX_POINTS, seed=1))
    assert time.perf_counter() - start < 1.0


def test_a_full_scan_of_the_largest_input_is_bounded(scorer):
    # No pair is below 0, so every one of the ~2e6 pairs of 2**50-sized points is checked.
    rng = random.Random(2)
    pts = [
        tuple(rng.randrange(-(2**50), 2**50 + 1) for _ in range(11))
        for _ in range(scorer.MAX_POINTS)
    ]
    start = time.perf_counter()
    assert scorer.check_pairs(pts, 0) == 0
    assert time.perf_counter() - start < 3.0


@pytest.mark.parametrize("scale", [1, 2**10, 2**30, 2**50])
def test_pair_check_is_exact_against_python_ints(scorer, scale):
    rng = random.Random(scale)
    for _ in range(40):
        n = rng.randrange(2, 30)
        pts = [tuple(rng.randrange(-scale, scale + 1) for _ in range(11)) for _ in range(n)]
        d2 = [_norm([a - b for a, b in zip(pts[i], pts[j], strict=True)]) for i, j in _pairs(n)]
        low = min(d2)
        assert scorer.check_pairs(pts, low - 1) == 0
        assert scorer.check_pairs(pts, low) == d2.count(low)
        with pytest.raises(Rejected, match=f"= {low} < max"):
            scorer.check_pairs(pts, low + 1)


def _pairs(n):
    return [(i, j) for i in range(n) for j in range(i + 1, n)]
