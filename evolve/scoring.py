"""What a trusted scorer may use: the exception that rejects a candidate's output.

A problem's scorer is ``def score(output) -> dict[str, float]`` (or ``(metrics, feedback)``). It
runs outside the candidate's process, on the candidate's JSON output, and recomputes every
number itself. Raising :class:`Rejected` marks the candidate ``rejected`` with the message, which
the next prompt shows to the LLM.
"""

from __future__ import annotations


class Rejected(Exception):
    """The candidate's output is invalid; the message says why, in terms the LLM can act on."""
