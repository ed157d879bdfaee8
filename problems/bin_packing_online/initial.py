"""Online 1-D bin packing (FunSearch): an evolved priority function chooses each item's bin.

Items arrive one at a time and must be placed immediately. The skeleton below (FunSearch's)
offers each item every bin it fits in and puts it in the bin with the highest priority. ``run``
packs the OR3 instances and the seeded Weibull instances and returns, for every instance, the
bin chosen for each item in arrival order. The starting priority is best fit.
"""

import numpy as np


# EVOLVE-BLOCK-START
def priority(item, bins):
    """Priority of each bin for `item`; `bins` holds the remaining capacities of bins it fits in."""
    remaining = bins - item  # what would be left in each bin after adding the item
    small_gap = 0.0  # penalty for leaving a gap too small for most items; 0 gives best fit
    return -remaining - small_gap * ((remaining > 0) & (remaining < 20))
# EVOLVE-BLOCK-END


def online_binpack(items, capacity):
    """Place each item, in order, into the fitting bin of highest priority; return its bin index."""
    bins = np.full(len(items), float(capacity))  # remaining capacity; unused bins are full size
    assignment = []
    for item in items:
        valid = np.nonzero(bins - item >= 0)[0]
        best = int(valid[np.argmax(priority(item, bins[valid]))])
        bins[best] -= item
        assignment.append(best)
    return assignment


def weibull_instances(seed, count, size, capacity):
    """The seeded Weibull instances (the LLM4AD generator): items ~ Weibull(3) * 45 in [1, C]."""
    rng = np.random.RandomState(seed)
    return [np.round(np.clip(rng.weibull(3.0, size) * 45, 1, capacity)).astype(int).tolist() for _ in range(count)]


def run(or3, or3_capacity, weibull_seed, weibull_count, weibull_size, weibull_capacity):
    """The entry point: bin indices per item for every OR3 and every Weibull instance."""
    weibull = weibull_instances(weibull_seed, weibull_count, weibull_size, weibull_capacity)
    return {
        "or3": [online_binpack(items, or3_capacity) for items in or3],
        "weibull": [online_binpack(items, weibull_capacity) for items in weibull],
    }
