"""Replays the replies recorded in an earlier run: the same run again, with no API and no cost.

Because a seeded run renders the same prompts in the same order (see :mod:`evolve.controller`),
a reply is looked up by the exact prompt it answered. A prompt the recorded run never sent means
the runs diverged (another config, problem or code version); that is an error, not a guess.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence

from evolve.llm.base import LLMError
from evolve.records import LLMReply, LLMRequest, Message


def prompt_key(messages: Sequence[Message] | Iterable[dict[str, str]]) -> str:
    """A digest of a prompt's roles and texts."""
    items = [m.model_dump() if isinstance(m, Message) else {"role": m["role"], "content": m["content"]} for m in messages]
    return hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()


class ReplayLLM:
    """Answers each prompt with the reply the recorded run got for it."""

    def __init__(self, recorded: dict[str, list[LLMReply]], source: str) -> None:
        self._recorded = {k: list(v) for k, v in recorded.items()}
        self._source = source
        self._total = sum(len(v) for v in recorded.values())
        self._used = 0

    @property
    def name(self) -> str:
        return f"replay:{self._source}"

    async def complete(self, request: LLMRequest) -> LLMReply:
        queue = self._recorded.get(prompt_key(request.messages))
        if not queue and self._used >= self._total:
            raise LLMError(
                f"replay of {self._source}: the recorded replies ran out (all {self._total} were used); "
                "the recording ends here",
                retryable=False,
                kind="replay_exhausted",
            )
        if not queue:
            raise LLMError(
                f"replay of {self._source}: the recorded run never sent this prompt "
                "(the runs diverged: same problem, config and seed are needed)",
                retryable=False,
                kind="replay_diverged",
                model=self.name,
            )
        self._used += 1
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        return reply.model_copy(update={"cost_usd": 0.0, "latency_s": 0.0})

    async def aclose(self) -> None:
        return None
