"""What every model behind an official SDK client shares: its spec, the injected client, the
per-endpoint concurrency bound, the retry policy and its jitter source."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import aiohttp
import numpy as np

from evolve.llm.base import LLMError
from evolve.llm.config import ModelSpec, RetryConfig
from evolve.llm.errors import CallContext, ProviderError, classify_connection, malformed_reply
from evolve.llm.pricing import Usage, cost_usd
from evolve.llm.retry import call_with_retries
from evolve.records import LLMReply, LLMRequest, RetriedFailure


class _Closable(Protocol):
    async def close(self) -> None: ...


ClientT = TypeVar("ClientT", bound=_Closable)


@dataclass(frozen=True)
class SDKErrors:
    """An SDK's exception classes, most specific first, as :meth:`SDKModel._attempt` maps them."""

    status: type[Exception]
    timeout: type[Exception]
    connection: type[Exception]
    other: type[Exception]


class SDKModel(ABC, Generic[ClientT]):
    """Base of the provider models: one attempt is :meth:`_send` under the endpoint's limiter, the
    SDK's exceptions mapped to :class:`ProviderError`, then :meth:`_reply`; :meth:`complete`
    retries attempts by the retry policy. Subclasses name their SDK's exceptions in ``errors``.

    Args:
        spec: the model's configuration.
        client: the SDK client for the endpoint; shared by models on the same endpoint.
        limiter: bounds requests in flight to the endpoint; shared with the client.
        retry: the retry policy.
        rng: jitter source for the backoff.
        max_reply_chars: a longer reply text is a malformed reply (retried).
    """

    def __init__(
        self,
        spec: ModelSpec,
        client: ClientT,
        limiter: asyncio.Semaphore,
        retry: RetryConfig,
        rng: np.random.Generator,
        *,
        max_reply_chars: int = 200_000,
    ) -> None:
        self._spec = spec
        self._max_reply_chars = max_reply_chars
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
        retried: list[RetriedFailure] = []

        def note(exc: ProviderError) -> None:
            retried.append(RetriedFailure(kind=exc.kind, message=str(exc)))

        try:
            reply = await call_with_retries(
                lambda: self._attempt(request), self._retry, self._rng, on_retry=note
            )
        except LLMError as exc:
            exc.retried = tuple(retried)
            exc.model = exc.model or self._ctx.model
            exc.endpoint = exc.endpoint or self._ctx.base_url
            raise
        return reply.model_copy(update={"retried": tuple(retried)}) if retried else reply

    async def aclose(self) -> None:
        await self._client.close()

    errors: ClassVar[SDKErrors]

    @abstractmethod
    async def _send(self, request: LLMRequest) -> object:
        """The SDK call for ``request``: the response body as parsed JSON."""

    @abstractmethod
    def _status_error(self, exc: Any) -> ProviderError:
        """An HTTP error status as a ProviderError (retryable or not, by kind)."""

    @abstractmethod
    def _reply(self, response: object, latency: float) -> LLMReply:
        """The reply record of a response body; :func:`malformed_reply` if it is not one."""

    async def _attempt(self, request: LLMRequest) -> LLMReply:
        """One request under the endpoint's limiter, with a total deadline of ``timeout_s``.

        The SDKs' own timeout is an idle timeout (it restarts with every byte read), so a server
        that trickles its reply would hold the call for ever; :func:`asyncio.timeout` bounds the
        whole attempt, from sending the request to the last byte of the reply. The wait for a
        concurrency slot is not counted: it is this process's queue, not the server's delay.
        """
        errors = self.errors
        deadline = self._spec.timeout_s
        async with self._limiter:
            started = time.perf_counter()
            try:
                async with asyncio.timeout(deadline):
                    response = await self._send(request)
            except TimeoutError as exc:
                raise classify_connection(
                    self._ctx, timed_out=True, detail=str(exc), timeout_s=deadline
                ) from exc
            except errors.status as exc:
                raise self._status_error(exc) from exc
            except errors.timeout as exc:
                timed_out = _timed_out(exc)
                raise classify_connection(
                    self._ctx, timed_out=timed_out, detail=str(exc), timeout_s=deadline
                ) from exc
            except errors.connection as exc:
                raise classify_connection(self._ctx, timed_out=False, detail=str(exc)) from exc
            except errors.other as exc:  # e.g. a body that fails the SDK's validation
                raise malformed_reply(self._ctx, str(exc)) from exc
            except ValueError as exc:  # a 2xx body that is not JSON, or not text at all
                raise malformed_reply(self._ctx, f"{type(exc).__name__}: {exc}") from exc
            latency = time.perf_counter() - started
        return self._reply(response, latency)

    def _make_reply(self, text: str, usage: Usage, latency: float) -> LLMReply:
        """The reply record: text, tokens (cache reads and writes too), latency and cost; a
        malformed-reply error if the text is longer than ``max_reply_chars``."""
        if len(text) > self._max_reply_chars:
            raise malformed_reply(
                self._ctx,
                f"reply of {len(text)} chars exceeds llm.max_reply_chars={self._max_reply_chars}",
            )
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


def _timed_out(exc: BaseException) -> bool:
    """Whether an SDK timeout error is one. The SDKs' aiohttp transport reports a dropped
    connection as a connect timeout (it maps aiohttp's ClientConnectionError so); the cause chain
    tells them apart: a real timeout has a TimeoutError in it, a drop an aiohttp connection error."""
    cause: BaseException | None = exc
    for _ in range(16):
        if cause is None:
            break
        if isinstance(cause, TimeoutError):
            return True
        if isinstance(cause, aiohttp.ClientConnectionError):
            return False
        cause = cause.__cause__ or cause.__context__
    return True


def json_object(value: object, ctx: CallContext, where: str, *, optional: bool = False) -> dict[str, Any]:
    """``value`` as a JSON object (an empty one for an absent ``optional`` field), or a
    malformed-reply error naming ``where``."""
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise malformed_reply(ctx, f"{where} is not a JSON object")
    return value


def json_int(fields: dict[str, Any], key: str, ctx: CallContext) -> int:
    """A token count: a non-negative integer, 0 when absent or null."""
    value = fields.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise malformed_reply(ctx, f"usage field {key} is not a token count: {value!r}")
    return value
