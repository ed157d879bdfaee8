"""Online 1-D bin packing (FunSearch): an evolved priority function chooses each item's bin.

The environment (the trusted side) shows one item at a time over a channel and waits for the
bin before it shows the next. The skeleton below is FunSearch's: it offers the item every bin it
fits in and answers with the bin of highest priority. The starting priority is best fit.
"""

import numpy as np


# EVOLVE-BLOCK-START
def priority(item, bins):
    """Priority of each bin for `item`; `bins` holds the remaining capacities of bins it fits in."""
    remaining = bins - item  # what would be left in each bin after adding the item
    small_gap = 0.0  # penalty for leaving a gap too small for most items; 0 gives best fit
    return -remaining - small_gap * ((remaining > 0) & (remaining < 20))
# EVOLVE-BLOCK-END


class Channel:
    """This program's end of the channel: observations in, answers out, one JSON line each."""

    def __init__(self, fd):
        import socket

        self._sock = socket.socket(fileno=fd)
        self._in = self._sock.makefile("rb")

    def observe(self):
        """The next observation, or None when the environment has ended the episode."""
        import json

        line = self._in.readline()
        return json.loads(line) if line else None

    def answer(self, action):
        """Send the answer to the last observation."""
        import json

        self._sock.sendall(json.dumps(action).encode() + b"\n")


def online_binpack(channel, capacity, num_items):
    """Place each item, as it arrives, into the fitting bin of highest priority."""
    bins = np.array([capacity for _ in range(num_items)])  # remaining capacity of every bin
    for _ in range(num_items):
        item = channel.observe()
        valid = np.nonzero((bins - item) >= 0)[0]
        best = int(valid[np.argmax(priority(item, bins[valid]))])
        bins[best] -= item
        channel.answer(best)


def run(channel_fd):
    """The entry point: pack every instance the environment starts, item by item."""
    channel = Channel(channel_fd)
    while (instance := channel.observe()) is not None:
        online_binpack(channel, instance["capacity"], instance["num_items"])
