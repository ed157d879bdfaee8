"""Interactive evaluation: a trusted environment plays an episode with the candidate, step by step.

Some problems cannot be stated as "return an object, the scorer checks it": an online algorithm
must not see the future, a game player must not read the opponent's hand. For these a problem
sets ``interactive: true`` in its ``problem.yaml``, and its ``scorer`` names an *environment*
function instead of a scorer::

    def interact(channel: Channel) -> dict[str, float] | tuple[dict[str, float], str]:
        for item in hidden_items:                 # the hidden state lives here only
            action = channel.ask({"item": item})  # one observation out, the answer back
            ...                                   # check it; raise Rejected when it is illegal
        return metrics, feedback

It runs in a trusted worker process (never in the candidate's), like a scorer, and may also take
``stage=`` and ``entry_kwargs=`` arguments. The candidate runs in the sandbox as usual, with the
same limits, and its entry function receives ``channel_fd``: its end of a Unix socket on which
it reads one JSON line per observation and writes one JSON line per answer. The environment
sends the next observation only after the answer to the last one has arrived, so the
candidate's process never holds what it has not been shown. When ``interact`` returns, the
channel closes (the candidate reads end of file) and its metrics are the candidate's score; the
candidate's own return value is ignored. Every byte from the candidate is hostile: an answer
that is not one JSON line of at most ``MAX_ANSWER_BYTES``, or a channel closed before the
answer, ends the episode with :class:`~evolve.scoring.Rejected`.

The candidate's side needs only the standard library; :data:`CANDIDATE_CHANNEL` is a class a
program can carry outside its EVOLVE block (``evolve init --interactive`` writes one).
"""

from __future__ import annotations

import json
import socket
from typing import Any

from evolve.scoring import Rejected

#: The longest answer (one JSON line) the environment reads from the candidate.
MAX_ANSWER_BYTES = 1 << 20


class Channel:
    """The environment's end of the channel to one candidate: observations out, answers in.

    Args:
        sock: a connected stream socket whose peer is the candidate.
        max_answer_bytes: the longest answer accepted, in bytes.
    """

    def __init__(self, sock: socket.socket, max_answer_bytes: int = MAX_ANSWER_BYTES) -> None:
        self._sock = sock
        self._in = sock.makefile("rb")
        self._max = max_answer_bytes
        self.steps = 0  # observations answered so far
        self.program_gone = False  # the episode ended because the program closed its end

    def tell(self, observation: Any) -> None:
        """Send one observation that needs no answer (the start of an instance, say).

        Raises:
            Rejected: the candidate closed its end.
        """
        try:
            self._sock.sendall(json.dumps(observation).encode() + b"\n")
        except OSError:
            self.program_gone = True
            raise Rejected(
                f"the program stopped reading the channel after {self.steps} answer(s)"
            ) from None

    def ask(self, observation: Any) -> Any:
        """Send one observation and return the candidate's answer, decoded from JSON.

        Raises:
            Rejected: the channel closed before the answer, or the answer is too long or not
                JSON.
        """
        self.tell(observation)
        try:
            line = self._in.readline(self._max + 1)
        except OSError:
            line = b""
        if not line:
            self.program_gone = True
            raise Rejected(
                f"the program ended without answering observation {self.steps + 1} "
                f"(it answered {self.steps})"
            )
        if len(line) > self._max:
            raise Rejected(
                f"the answer to observation {self.steps + 1} is longer than {self._max} bytes"
            )
        try:
            answer = json.loads(line)
        except ValueError:
            raise Rejected(
                f"the answer to observation {self.steps + 1} is not one JSON line: {line[:80]!r}"
            ) from None
        self.steps += 1
        return answer

    def close(self) -> None:
        """Close the channel: the candidate reads end of file."""
        self._in.close()
        self._sock.close()


#: The candidate's side of the channel, for a program to carry outside its EVOLVE block.
CANDIDATE_CHANNEL = '''\
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

        self._sock.sendall(json.dumps(action).encode() + b"\\n")
'''
