"""Classify a failed model call into an :class:`LLMError` with a kind and a retry decision.

Pure functions of what the HTTP layer saw (status, headers, the API's error message and code), so
that both SDKs share one policy: rate limits, server errors, timeouts and dropped connections are
retryable; bad keys, unknown models and malformed requests are not; a prompt too long for the
model is its own non-retryable kind (``context_length``) so the controller can shrink the prompt.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from evolve.llm.base import LLMError

__all__ = [
    "CallContext",
    "ProviderError",
    "classify_connection",
    "classify_status",
    "empty_reply",
    "is_context_length",
    "malformed_reply",
    "parse_retry_after",
    "retry_after_beyond_budget",
]

# Phrases real servers use for "the prompt does not fit": OpenAI ("maximum context length",
# code context_length_exceeded), Anthropic ("prompt is too long"), vLLM and SGLang ("context
# length"), llama.cpp ("exceeds the available context size").
_CONTEXT_RE = re.compile(
    r"context[ _]length|maximum context|context size|context window|prompt is too long"
    r"|prompt_too_long|too many input tokens",
    re.IGNORECASE,
)
_RETRYABLE_STATUSES = frozenset({408, 409, 429})


class ProviderError(LLMError):
    """An :class:`LLMError` that also carries the server's requested wait, for the retry loop,
    and the call's :class:`CallContext` (its model and endpoint)."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        kind: str,
        retry_after_s: float | None = None,
        ctx: CallContext | None = None,
    ) -> None:
        super().__init__(
            message,
            retryable=retryable,
            kind=kind,
            model=ctx.model if ctx else None,
            endpoint=ctx.base_url if ctx else None,
        )
        self.retry_after_s = retry_after_s
        self.ctx = ctx


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who was called, so that every error message names the model, endpoint and key variable."""

    provider: str
    model: str
    base_url: str
    key_env: str | None

    def who(self) -> str:
        return f"{self.provider} model '{self.model}' at {self.base_url}"


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms`` or ``retry-after``), if any."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        raw = lowered.get(name)
        if raw is None:
            continue
        try:
            return max(float(raw) * scale, 0.0)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    parsed = email.utils.parsedate_tz(raw)
    if parsed is None:
        return None
    return max(email.utils.mktime_tz(parsed) - (time.time() if now is None else now), 0.0)


def is_context_length(status: int, message: str, code: str | None) -> bool:
    """Whether a 4xx says the prompt is longer than the model's context window."""
    if status == 413:
        return True
    if status not in (400, 422):
        return False
    return _CONTEXT_RE.search(f"{code or ''} {message}") is not None


def classify_status(
    ctx: CallContext,
    status: int,
    message: str,
    *,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> ProviderError:
    """Turn an HTTP error response into a :class:`ProviderError` with its kind and retryability."""
    headers = headers or {}
    detail = " ".join(message.split())[:300] or "no message"
    if is_context_length(status, message, code):
        return ProviderError(
            f"{ctx.who()}: prompt exceeds the context window ({status}): {detail}",
            retryable=False,
            kind="context_length",
            ctx=ctx,
        )
    should_retry = {k.lower(): v for k, v in headers.items()}.get("x-should-retry")
    retryable = status in _RETRYABLE_STATUSES or status >= 500
    if should_retry in ("true", "false"):
        retryable = should_retry == "true"
    if retryable:
        kind = "rate_limit" if status == 429 else "timeout" if status == 408 else "server"
        return ProviderError(
            f"{ctx.who()}: {status} {detail}",
            retryable=True,
            kind=kind,
            retry_after_s=parse_retry_after(headers),
            ctx=ctx,
        )
    if status in (401, 402, 403):
        key = f"${ctx.key_env}" if ctx.key_env else "no key variable (api_key_env unset)"
        return ProviderError(
            f"{ctx.who()}: authentication failed ({status}); check the key in {key}: {detail}",
            retryable=False,
            kind="auth",
            ctx=ctx,
        )
    if status == 404:
        return ProviderError(
            f"{ctx.who()}: not found ({status}); check the model name and base_url: {detail}",
            retryable=False,
            kind="not_found",
            ctx=ctx,
        )
    return ProviderError(
        f"{ctx.who()}: request rejected ({status}): {detail}",
        retryable=False,
        kind="bad_request",
        ctx=ctx,
    )


def classify_connection(
    ctx: CallContext, *, timed_out: bool, detail: str, timeout_s: float | None = None
) -> ProviderError:
    """A request that got no complete HTTP response in time (``timeout_s``, the attempt's total
    deadline), or a refused or dropped connection."""
    if timed_out:
        within = f" within {timeout_s:g} s" if timeout_s is not None else ""
        return ProviderError(
            f"{ctx.who()}: request timed out (no complete reply{within})",
            retryable=True,
            kind="timeout",
            ctx=ctx,
        )
    return ProviderError(
        f"{ctx.who()}: connection failed: {' '.join(detail.split())[:200]}",
        retryable=True,
        kind="connection",
        ctx=ctx,
    )


def empty_reply(ctx: CallContext, reason: str) -> ProviderError:
    """A completion with no text in it; trying again may help."""
    return ProviderError(
        f"{ctx.who()}: empty reply ({reason})", retryable=True, kind="empty", ctx=ctx
    )


def malformed_reply(ctx: CallContext, detail: str) -> ProviderError:
    """A 2xx response that is not a completion (a proxy's error page, truncated or invalid JSON,
    JSON of another shape); retryable like a server error, with its own kind ``malformed``."""
    return ProviderError(
        f"{ctx.who()}: malformed response: {' '.join(detail.split())[:200]}",
        retryable=True,
        kind="malformed",
        ctx=ctx,
    )


def retry_after_beyond_budget(error: ProviderError, budget_s: float) -> ProviderError:
    """A retryable failure whose server asked for a wait (``Retry-After``) longer than the retry
    policy honours: the call fails at once, as kind ``rate_limited``, instead of sleeping."""
    wanted = error.retry_after_s or 0.0
    who = error.ctx.who() if error.ctx else "the model"
    detail = str(error).removeprefix(f"{who}: ")
    return ProviderError(
        f"{who}: the server asks to wait {wanted:g} s before retrying, beyond "
        f"llm.retry.max_retry_after_s={budget_s:g}; not waiting ({detail})",
        retryable=True,
        kind="rate_limited",
        retry_after_s=wanted,
        ctx=error.ctx,
    )
