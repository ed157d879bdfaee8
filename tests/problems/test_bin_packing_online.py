"""bin_packing_online: instances reproduced, packings re-verified, invalid packings rejected."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from evolve.problem import load_problem
from evolve.scoring import Rejected

PROBLEMS = Path(__file__).resolve().parents[2] / "problems"
PROBLEM = "bin_packing_online"
# sha256 of json.dumps of the 20 OR3 item lists in the FunSearch notebook (u500_00..u500_19).
OR3_SHA256 = "40c438852867c9cbab3087c606ad3444be6a134f501ef4d01df3798bb444b942"


@pytest.fixture(scope="module")
def scorer(load_scorer):
    return load_scorer(PROBLEM)


def _pack(items, capacity, choose):
    """Reference online packer: ``choose(item, remaining)`` picks among fitting open bins or -1."""
    remaining: list[int] = []
    labels = []
    for item in items.tolist():
        fits = [b for b, r in enumerate(remaining) if r >= item]
        b = choose(item, remaining, fits) if fits else -1
        if b < 0:
            remaining.append(capacity)
            b = len(remaining) - 1
        remaining[b] -= item
        labels.append(b)
    return labels


def _best_fit(item, remaining, fits):
    return min(fits, key=lambda b: (remaining[b] - item, b))


def _first_fit(item, remaining, fits):
    return fits[0]


def _packings(scorer, choose):
    return {
        name: [_pack(items, cap, choose) for items in insts]
        for name, (cap, insts) in scorer.instances().items()
    }


def test_problem_folder_loads_and_matches_the_scorer(scorer):
    spec = load_problem(PROBLEMS / PROBLEM).spec
    kw = spec.entry_kwargs
    assert (kw["or3_capacity"], kw["weibull_seed"]) == (scorer.OR3_CAPACITY, scorer.WEIBULL_SEED)
    assert (kw["weibull_count"], kw["weibull_size"]) == (scorer.WEIBULL_COUNT, scorer.WEIBULL_SIZE)
    assert kw["weibull_capacity"] == scorer.WEIBULL_CAPACITY
    digest = hashlib.sha256(json.dumps(kw["or3"]).encode()).hexdigest()
    assert digest == OR3_SHA256


def test_reproduces_the_published_baselines(scorer):
    best = scorer.score(_packings(scorer, _best_fit))[0]
    first = scorer.score(_packings(scorer, _first_fit))[0]
    # FunSearch notebook, OR3: best fit 5.37%, first fit 5.74% (L1 mean 201.2).
    assert best["or3_bins"] == pytest.approx(212.0, rel=1e-12)
    assert best["or3_excess_pct"] == pytest.approx(100 * (212.0 - 201.2) / 201.2, rel=1e-9)
    assert first["or3_excess_pct"] == pytest.approx(5.7405566600, rel=1e-9)
    # LLM4AD generator, seed 2024, 5 x 1000: best fit 4.61%, first fit 5.15%.
    assert best["weibull_excess_pct"] == pytest.approx(4.6062407132, rel=1e-9)
    assert first["weibull_excess_pct"] == pytest.approx(5.1510648836, rel=1e-9)
    assert best["excess_pct"] == pytest.approx(4.9870169769, rel=1e-9)


def test_rejects_an_overfull_bin(scorer):
    packings = _packings(scorer, _best_fit)
    labels = packings["or3"][3]
    items = scorer.instances()["or3"][1][3].tolist()
    load0 = sum(it for lab, it in zip(labels, items, strict=True) if lab == labels[0])
    k = next(k for k, it in enumerate(items) if labels[k] != labels[0] and load0 + it > 150)
    labels[k] = labels[0]  # move one item into the first item's bin, which then overflows
    with pytest.raises(Rejected, match=r"or3 instance 3: bin .* > capacity 150"):
        scorer.score(packings)


def test_rejects_missing_or_extra_items_and_bad_labels(scorer):
    good = _packings(scorer, _best_fit)
    for mutate, reason in [
        (lambda p: p["weibull"][0].pop(), "one bin label per item"),
        (lambda p: p["weibull"][0].append(0), "one bin label per item"),
        (lambda p: p["or3"].pop(), "20 assignments"),
        (lambda p: p["or3"][0].__setitem__(5, -1), "not an integer in"),
        (lambda p: p["or3"][0].__setitem__(5, 1.0), "not an integer in"),
        (lambda p: p["or3"][0].__setitem__(5, True), "not an integer in"),
        (lambda p: p.__setitem__("extra", []), "keys 'or3' and 'weibull'"),
    ]:
        packings = json.loads(json.dumps(good))
        mutate(packings)
        with pytest.raises(Rejected, match=reason):
            scorer.score(packings)


def test_bins_are_counted_from_labels_not_trusted(scorer):
    packings = _packings(scorer, _best_fit)
    # Relabelling bins changes nothing; the count is recomputed from the distinct labels.
    packings["weibull"][2] = [7 * lab + 1000 for lab in packings["weibull"][2]]
    assert scorer.score(packings)[0]["excess_pct"] == pytest.approx(4.9870169769, rel=1e-9)


def test_initial_program_is_best_fit(scorer, run_initial):
    metrics, _ = scorer.score(run_initial(PROBLEM))
    assert metrics["excess_pct"] == pytest.approx(4.9870169769, rel=1e-9)
    assert np.isfinite(metrics["or3_bins"])
