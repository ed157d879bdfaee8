"""Retry a model call on retryable failures, with exponential backoff, jitter and Retry-After.

Why not the SDKs' own retries: the two SDKs differ (one caps a server's ``Retry-After`` at two
minutes, the other honours any value), neither lets a caller tune the backoff or seed the jitter,
and a retry hidden inside the SDK holds the caller's concurrency slot while it sleeps. So the
clients are built with ``max_retries=0`` and this loop is the one policy for every provider. It
sleeps with :func:`asyncio.sleep`, never blocking the event loop, and retries only errors whose
``retryable`` flag is set (never ``empty``: an empty reply was billed; the caller decides).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import numpy as np

from evolve.llm.config import RetryConfig
from evolve.llm.errors import ProviderError, retry_after_beyond_budget

__all__ = ["backoff_delay", "call_with_retries"]

T = TypeVar("T")

_log = logging.getLogger(__name__)

#: Retry-After values get up to this fraction added, so that clients told to wait the same time
#: do not all come back in the same instant.
_RETRY_AFTER_JITTER = 0.1


def backoff_delay(
    attempt: int, policy: RetryConfig, rng: np.random.Generator, retry_after_s: float | None
) -> float | None:
    """Seconds to wait before retry number ``attempt`` (0-based), or None to stop retrying.

    A server's ``Retry-After`` is honoured (plus a little jitter) up to
    ``policy.max_retry_after_s``; a longer one stops the retries. Otherwise the delay is
    exponential with "equal jitter": half the capped exponential delay plus a uniform draw of up
    to the other half.
    """
    if retry_after_s is not None and retry_after_s > 0:
        if retry_after_s > policy.max_retry_after_s:
            return None
        return retry_after_s * (1.0 + _RETRY_AFTER_JITTER * float(rng.random()))
    capped = min(policy.initial_delay_s * 2.0**attempt, policy.max_delay_s)
    return capped / 2.0 + float(rng.uniform(0.0, capped / 2.0))


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryConfig,
    rng: np.random.Generator,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_retry: Callable[[ProviderError], None] | None = None,
) -> T:
    """Await ``attempt()`` until it succeeds, raises a non-retryable error, or retries run out;
    ``on_retry`` sees each error that is retried.

    Raises:
        ProviderError: the last error; retryable ones keep ``retryable=True`` so the caller knows
            that trying later may still help. A server that asks for a wait beyond
            ``policy.max_retry_after_s`` ends the call at once, as kind ``rate_limited``.
    """
    for index in range(policy.max_retries + 1):
        try:
            return await attempt()
        except ProviderError as exc:
            if not exc.retryable or exc.kind == "empty" or index == policy.max_retries:
                raise
            delay = backoff_delay(index, policy, rng, exc.retry_after_s)
            if delay is None:
                raise retry_after_beyond_budget(exc, policy.max_retry_after_s) from exc
            _log.info("retry %d/%d in %.2fs after %s", index + 1, policy.max_retries, delay, exc)
            if on_retry is not None:
                on_retry(exc)
        await sleep(delay)
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover
