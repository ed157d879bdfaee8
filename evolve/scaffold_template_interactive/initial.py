"""The secretary problem, online: take or let go each value as it is shown."""

import math


# EVOLVE-BLOCK-START
def decide(value, step, length, best_so_far):
    """Take `value` (True) or let it go for good (False); `step` counts from 0."""
    if step < round(length / math.e):
        return False
    return value > best_so_far
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


def run(channel_fd):
    """The entry point: answer every value the environment shows, sequence after sequence."""
    channel = Channel(channel_fd)
    length, step, best = 0, 0, float("-inf")
    while (observation := channel.observe()) is not None:
        if isinstance(observation, dict):  # a new sequence starts
            length, step, best = observation["length"], 0, float("-inf")
            continue
        channel.answer(bool(decide(observation, step, length, best)))
        best = max(best, observation)
        step += 1
