"""Trusted environment for PROBLEM_NAME: the secretary problem, one value at a time.

It runs in a trusted worker process, never in the candidate's (see ``evolve.interactive``). The
values are drawn here from a seeded generator and shown one at a time; the next is sent only
after the answer to the current one, so the candidate never holds a value it has not seen.
"""

import random

from evolve.scoring import Rejected

SEQUENCES = 200
LENGTH = 50
SEED = 2024  # the candidate cannot see this file: the sandbox hides the problem folder


def interact(channel):
    """Play every sequence; return (metrics, feedback), or raise Rejected for a bad answer."""
    rng = random.Random(SEED)
    wins = 0
    taken_sum = 0.0
    for _ in range(SEQUENCES):
        values = [rng.random() for _ in range(LENGTH)]
        channel.tell({"length": LENGTH})
        taken = values[-1]  # the last one, if none was taken before it
        for step, value in enumerate(values[:-1]):
            answer = channel.ask(value)
            if not isinstance(answer, bool):
                raise Rejected(f"step {step}: the answer must be true or false, got {answer!r:.40}")
            if answer:
                taken = value
                break
        wins += taken == max(values)
        taken_sum += taken
    metrics = {"success_rate": wins / SEQUENCES, "mean_taken": taken_sum / SEQUENCES}
    feedback = f"took the largest value in {wins} of {SEQUENCES} sequences"
    return metrics, feedback
