"""What every model behind an official SDK client shares: its spec, the injected client, the
per-endpoint concurrency bound, the retry policy and its jitter source."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import Generic, Protocol, TypeVar

import numpy as np

from evolve.llm.config import ModelSpec, RetryConfig
from evolve.llm.errors import CallContext
from evolve.llm.pricing import Usage, cost_usd
from evolve.llm.retry import call_with_retries
from evolve.records import LLMReply, LLMRequest


class _Closable(Protocol):
    async def close(self) -> None: ...


ClientT = TypeVar("ClientT", bound=_Closable)


class SDKModel(ABC, Generic[ClientT]):
    """Base of the provider models: retries :meth:`_attempt`, which subclasses implement.

    Args:
        spec: the model's configuration.
        client: the SDK client for the endpoint; shared by models on the same endpoint.
        limiter: bounds requests in flight to the endpoint; shared with the client.
        retry: the retry policy.
        rng: jitter source for the backoff.
    """

    def __init__(
        self,
        spec: ModelSpec,
        client: ClientT,
        limiter: asyncio.Semaphore,
        retry: RetryConfig,
        rng: np.random.Generator,
    ) -> None:
        self._spec = spec
        self._client = client
        self._limiter = limiter
        self._retry = retry
        self._rng = rng
        self._ctx = CallContext(
            spec.provider, spec.model, spec.resolved_base_url(), spec.resolved_key_env()
        )

    @property
    def name(self) -> str:
        return self._spec.model

    async def complete(self, request: LLMRequest) -> LLMReply:
        """Ask the model for one completion, retrying retryable failures.

        Raises:
            LLMError: see :mod:`evolve.llm.errors` for the kinds.
        """
        return await call_with_retries(lambda: self._attempt(request), self._retry, self._rng)

    async def aclose(self) -> None:
        await self._client.close()

    @abstractmethod
    async def _attempt(self, request: LLMRequest) -> LLMReply:
        """One call to the provider, its failures mapped to ProviderError."""

    def _make_reply(self, text: str, usage: Usage, latency: float) -> LLMReply:
        """The reply record: text, tokens (cache reads and writes too), latency and cost."""
        return LLMReply(
            model=self._spec.model,
            text=text,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            latency_s=latency,
            cost_usd=cost_usd(usage, self._spec),
        )
