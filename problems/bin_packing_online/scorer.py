"""Trusted scorer for ``bin_packing_online``: excess bins of an online packing heuristic (FunSearch).

The candidate runs its heuristic inside the sandbox and returns the packings it produced:
``{"or3": [assignment, ...], "weibull": [assignment, ...]}``, where ``assignment[k]`` is the bin
label (any integer in ``[0, 2**31)``) chosen for item ``k`` of the instance, in arrival order.
This scorer never trusts a count from the candidate: it loads and regenerates the instances
itself and re-verifies every packing.

Instances (the same ones the candidate receives through ``entry_kwargs``):

- OR3: the 20 OR-Library binpack3 instances (500 items, capacity 150), read from this folder's
  ``problem.yaml`` (``entry_kwargs.or3``), copied from google-deepmind/funsearch@cc53f27
  ``bin_packing/bin_packing.ipynb``;
- Weibull: 5 instances of 1000 items, capacity 100,
  ``round(clip(RandomState(2024).weibull(3.0, 1000) * 45, 1, 100))`` drawn in sequence (the
  LLM4AD generator; legacy ``RandomState`` streams are frozen across numpy versions).

Checks, in exact integer arithmetic: one assignment per instance, one integer label per item;
every bin's total size ``<= capacity``. Bins used = number of distinct labels. Per dataset,
``excess = 100 * (sum bins - sum L1) / sum L1`` with ``L1 = ceil(sum(items) / capacity)``; the
score ``excess_pct`` is the mean of the OR3 and Weibull excesses.

Reference values (recomputed): best fit 4.987 (OR3 5.368, Weibull 4.606); first fit 5.446;
FunSearch's OR heuristic 3.106 on OR3 and its Weibull heuristic 3.021 on these Weibull instances.

Limitation: a packing cannot show whether it was built online. The skeleton that enforces the
online rule lies outside the EVOLVE block, which the framework does not let the LLM edit.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import yaml

from evolve.scoring import Rejected

OR3_CAPACITY = 150
OR3_COUNT = 20
WEIBULL_SEED = 2024
WEIBULL_COUNT = 5
WEIBULL_SIZE = 1000
WEIBULL_CAPACITY = 100
MAX_LABEL = 2**31
BEST_KNOWN = 3.0638


@functools.cache
def instances() -> dict[str, tuple[int, list[np.ndarray]]]:
    """``{dataset: (capacity, [items per instance])}``, loaded and generated here."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = yaml.load((Path(__file__).resolve().parent / "problem.yaml").read_text(), Loader=loader)
    or3 = [np.array(items, dtype=np.int64) for items in spec["entry_kwargs"]["or3"]]
    if len(or3) != OR3_COUNT or any(len(items) != 500 for items in or3):
        raise RuntimeError("problem.yaml: entry_kwargs.or3 must hold 20 instances of 500 items")
    rng = np.random.RandomState(WEIBULL_SEED)
    weibull = [
        np.round(np.clip(rng.weibull(3.0, WEIBULL_SIZE) * 45, 1, WEIBULL_CAPACITY)).astype(np.int64)
        for _ in range(WEIBULL_COUNT)
    ]
    return {"or3": (OR3_CAPACITY, or3), "weibull": (WEIBULL_CAPACITY, weibull)}


def parse_assignment(raw: object, where: str, size: int) -> np.ndarray:
    """One instance's bin labels as an int array, or :class:`Rejected` saying why not."""
    if not isinstance(raw, list | tuple):
        raise Rejected(f"{where}: expected a list of {size} bin labels, got {type(raw).__name__}")
    if len(raw) != size:
        raise Rejected(f"{where}: expected one bin label per item ({size} items), got {len(raw)}")
    for k, v in enumerate(raw):
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < MAX_LABEL:
            raise Rejected(
                f"{where}, item {k}: bin label {v!r:.40} is not an integer in [0, 2**31)"
            )
    return np.array(raw, dtype=np.int64)


def count_bins(labels: np.ndarray, items: np.ndarray, capacity: int, where: str) -> int:
    """Bins used by a valid packing; :class:`Rejected` naming the first overfull bin."""
    uniq, inverse = np.unique(labels, return_inverse=True)
    loads = np.zeros(len(uniq), dtype=np.int64)
    np.add.at(loads, inverse, items)
    over = np.flatnonzero(loads > capacity)
    if over.size:
        b = int(over[0])
        members = np.flatnonzero(inverse == b)[:8].tolist()
        raise Rejected(
            f"{where}: bin {int(uniq[b])} holds {int(loads[b])} > capacity {capacity} "
            f"({over.size} overfull bin(s); items {members}...)"
        )
    return len(uniq)


def score(output: object) -> tuple[dict[str, float], str]:
    """Re-verify every packing and return (metrics, feedback)."""
    data = instances()
    if not isinstance(output, dict) or set(output) != set(data):
        got = sorted(output) if isinstance(output, dict) else type(output).__name__
        raise Rejected(f"expected a dict with keys 'or3' and 'weibull', got {got}")
    metrics: dict[str, float] = {}
    for name, (capacity, insts) in data.items():
        packings = output[name]
        if not isinstance(packings, list | tuple) or len(packings) != len(insts):
            raise Rejected(f"{name}: expected a list of {len(insts)} assignments, one per instance")
        bins = l1 = 0
        for i, (raw, items) in enumerate(zip(packings, insts, strict=True)):
            where = f"{name} instance {i}"
            labels = parse_assignment(raw, where, len(items))
            bins += count_bins(labels, items, capacity, where)
            l1 += -(-int(items.sum()) // capacity)
        metrics[f"{name}_excess_pct"] = 100.0 * (bins - l1) / l1
        metrics[f"{name}_bins"] = bins / len(insts)
    metrics["excess_pct"] = (metrics["or3_excess_pct"] + metrics["weibull_excess_pct"]) / 2
    feedback = (
        f"valid packings; excess bins over L1: OR3 {metrics['or3_excess_pct']:.4f}% "
        f"({metrics['or3_bins']:.2f} bins per instance), Weibull {metrics['weibull_excess_pct']:.4f}% "
        f"({metrics['weibull_bins']:.2f}); mean {metrics['excess_pct']:.4f}% "
        f"(best fit 4.987, FunSearch-level {BEST_KNOWN})"
    )
    return metrics, feedback
