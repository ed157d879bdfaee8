"""Trusted environment for ``bin_packing_online``: online bin packing, one item at a time (FunSearch).

The problem is interactive (see :mod:`evolve.interactive`): this module holds the instances and
shows the candidate one item at a time over a channel; the candidate, running in the sandbox,
answers with the bin it puts that item in. The next item is sent only after that answer, so
the candidate's process never holds an item it has not been shown, and no code in it (its
EVOLVE block included) can read ahead. The packing is built here from the answers, so no count
from the candidate is trusted.

Instances (``instances.json`` in this folder, which the sandbox hides from candidates), both
copied from google-deepmind/funsearch@cc53f27 ``bin_packing/bin_packing.ipynb`` (CC-BY-4.0):

- OR3: the 20 OR-Library binpack3 instances u500_00..u500_19 (500 items, capacity 150);
- Weibull 5k: FunSearch's 5 instances of 5,000 items, capacity 100.

Protocol, per instance in that order: ``{"capacity": C, "num_items": n}`` (no answer), then
each item size in arrival order, each answered by a bin index. Bins are numbered
``0..n-1`` and start empty, as in FunSearch's skeleton (``bins = [C] * num_items``); an answer
must be an integer in that range naming a bin with room for the item, exactly (integer sizes).
Anything else, or a channel closed early, rejects the candidate at that item.

Score: per dataset ``excess = 100 * (sum bins - sum L1) / sum L1`` with
``L1 = ceil(sum(items) / C)`` per instance (FunSearch's lower bound: mean L1 201.2 on OR3 and
1987.8 on Weibull 5k); ``excess_pct`` is the mean of the OR3 and Weibull 5k excesses.

Reference values (recomputed with FunSearch's skeleton and published heuristics): best fit OR3
5.3678, Weibull 5k 3.9843 (mean 4.6760); FunSearch's OR heuristic 3.1064 on OR3 (3.0285 on
Weibull 5k); its Weibull heuristic 0.6842 on Weibull 5k (12.7734 on OR3). The best known, 1.8953,
is the mean of each heuristic on its own dataset: neither reaches it alone (3.0675 and 6.7288).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from evolve.scoring import Rejected

DATASETS = ("or3", "weibull_5k")
BEST_KNOWN = 1.8953
BEST_FIT = 4.6760


@functools.cache
def instances() -> dict[str, tuple[int, dict[str, list[int]]]]:
    """``{dataset: (capacity, {instance name: item sizes})}``, read from ``instances.json``."""
    raw = json.loads((Path(__file__).resolve().parent / "instances.json").read_text())
    return {
        name: (int(raw["datasets"][name]["capacity"]), raw["datasets"][name]["instances"])
        for name in DATASETS
    }


def l1_bound(items: list[int], capacity: int) -> int:
    """FunSearch's lower bound on the bins of one instance: ``ceil(sum(items) / capacity)``."""
    return -(-sum(items) // capacity)


def pack(channel: Any, name: str, items: list[int], capacity: int) -> int:
    """Play one instance with the candidate; the number of bins its answers used.

    Raises:
        Rejected: an answer that is not a bin index with room for the item.
    """
    n = len(items)
    channel.tell({"capacity": capacity, "num_items": n})
    remaining = [capacity] * n
    used = 0
    for k, item in enumerate(items):
        b = channel.ask(item)
        if isinstance(b, bool) or not isinstance(b, int) or not 0 <= b < n:
            raise Rejected(
                f"{name}, item {k} (size {item}): the answer {b!r:.40} is not a bin index in "
                f"[0, {n})"
            )
        if remaining[b] < item:
            raise Rejected(
                f"{name}, item {k} (size {item}): bin {b} has only {remaining[b]} left"
            )
        used += remaining[b] == capacity
        remaining[b] -= item
    return used


def interact(channel: Any) -> tuple[dict[str, float], str]:
    """Play every instance of both datasets and return (metrics, feedback)."""
    metrics: dict[str, float] = {}
    for dataset, (capacity, insts) in instances().items():
        bins = l1 = 0
        for name, items in insts.items():
            bins += pack(channel, name, items, capacity)
            l1 += l1_bound(items, capacity)
        short = dataset.split("_")[0]
        metrics[f"{short}_excess_pct"] = 100.0 * (bins - l1) / l1
        metrics[f"{short}_bins"] = bins / len(insts)
    metrics["excess_pct"] = (metrics["or3_excess_pct"] + metrics["weibull_excess_pct"]) / 2
    feedback = (
        f"excess bins over L1: OR3 {metrics['or3_excess_pct']:.4f}% "
        f"({metrics['or3_bins']:.2f} bins per instance), Weibull 5k "
        f"{metrics['weibull_excess_pct']:.4f}% ({metrics['weibull_bins']:.1f}); mean "
        f"{metrics['excess_pct']:.4f}% (best fit {BEST_FIT}; best known {BEST_KNOWN}, the mean of "
        f"FunSearch's OR3 heuristic on OR3 and its Weibull heuristic on Weibull 5k)"
    )
    return metrics, feedback
