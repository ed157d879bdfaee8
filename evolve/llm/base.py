"""The small async interface every model provider implements."""

from __future__ import annotations

from typing import Protocol

from evolve.records import LLMReply, LLMRequest, RetriedFailure


class LLMError(Exception):
    """A failed model call. ``retryable`` says whether trying again can help; ``retried``
    holds the failed attempts retried before this last one; ``model`` and ``endpoint`` (the
    API root called) say who failed, when the call reached a network model."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        kind: str = "error",
        retried: tuple[RetriedFailure, ...] = (),
        model: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.kind = kind
        self.retried = retried
        self.model = model
        self.endpoint = endpoint


class LLM(Protocol):
    """Turns a prompt into a reply. Implementations are async and hold no global state."""

    @property
    def name(self) -> str: ...

    async def complete(self, request: LLMRequest) -> LLMReply: ...

    async def aclose(self) -> None: ...
