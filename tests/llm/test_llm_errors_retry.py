"""Error classification and the retry policy, as pure functions (no server)."""

from __future__ import annotations

import email.utils

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from evolve.llm.config import RetryConfig
from evolve.llm.errors import (
    CallContext,
    ProviderError,
    classify_status,
    is_context_length,
    parse_retry_after,
)
from evolve.llm.retry import backoff_delay, call_with_retries

CTX = CallContext("openai", "gpt-x", "https://api.example/v1", "MY_KEY")


@pytest.mark.parametrize(
    ("status", "message", "code", "kind", "retryable"),
    [
        (429, "slow down", None, "rate_limit", True),
        (500, "oops", None, "server", True),
        (503, "unavailable", None, "server", True),
        (529, "Overloaded", "overloaded_error", "server", True),
        (408, "request timeout", None, "timeout", True),
        (401, "bad key", "invalid_api_key", "auth", False),
        (403, "forbidden", None, "auth", False),
        (404, "no such model", "model_not_found", "not_found", False),
        (400, "messages: field required", None, "bad_request", False),
        (422, "unprocessable", None, "bad_request", False),
        (400, "This model's maximum context length is 8192 tokens", None, "context_length", False),
        (400, "whatever", "context_length_exceeded", "context_length", False),
        (400, "prompt is too long: 210452 tokens > 200000 maximum", None, "context_length", False),
        (400, "the request exceeds the available context size", None, "context_length", False),
        (413, "request too large", None, "context_length", False),
    ],
)
def test_status_is_classified(
    status: int, message: str, code: str | None, kind: str, retryable: bool
) -> None:
    error = classify_status(CTX, status, message, code=code)
    assert (error.kind, error.retryable) == (kind, retryable)
    assert "gpt-x" in str(error)


def test_auth_message_is_one_line_naming_model_and_variable() -> None:
    error = classify_status(CTX, 401, "Incorrect API key\nprovided")
    assert "'gpt-x'" in str(error) and "$MY_KEY" in str(error) and "\n" not in str(error)


def test_x_should_retry_header_overrides_the_status() -> None:
    assert not classify_status(CTX, 500, "no", headers={"x-should-retry": "false"}).retryable
    assert classify_status(CTX, 400, "yes", headers={"X-Should-Retry": "true"}).retryable


def test_retry_after_is_parsed_in_seconds_milliseconds_and_dates() -> None:
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({}) is None
    date = email.utils.formatdate(1000.0 + 30.0, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=1000.0) == pytest.approx(30.0)
    assert parse_retry_after({"retry-after": "soon"}) is None


def test_context_length_needs_a_client_error_status() -> None:
    assert not is_context_length(500, "maximum context length", None)


@given(attempt=st.integers(0, 30), seed=st.integers(0, 2**32 - 1))
def test_backoff_is_exponential_with_jitter_within_bounds(attempt: int, seed: int) -> None:
    policy = RetryConfig(initial_delay_s=0.5, max_delay_s=8.0)
    delay = backoff_delay(attempt, policy, np.random.default_rng(seed), None)
    capped = min(0.5 * 2.0**attempt, 8.0)
    assert delay is not None and capped / 2 <= delay <= capped


@given(retry_after=st.floats(0.01, 100.0), seed=st.integers(0, 2**32 - 1))
def test_retry_after_is_honoured_up_to_the_cap(retry_after: float, seed: int) -> None:
    policy = RetryConfig(max_retry_after_s=50.0)
    delay = backoff_delay(0, policy, np.random.default_rng(seed), retry_after)
    if retry_after > 50.0:
        assert delay is None
    else:
        assert delay is not None and retry_after <= delay <= retry_after * 1.1


async def test_retries_stop_at_a_non_retryable_error() -> None:
    calls: list[int] = []
    slept: list[float] = []

    async def attempt() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ProviderError("busy", retryable=True, kind="server")
        raise ProviderError("bad key", retryable=False, kind="auth")

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    with pytest.raises(ProviderError) as info:
        await call_with_retries(attempt, RetryConfig(), np.random.default_rng(0), sleep=sleep)
    assert info.value.kind == "auth" and len(calls) == 2 and len(slept) == 1


async def test_retries_run_out_and_reraise_the_last_retryable_error() -> None:
    slept: list[float] = []

    async def attempt() -> str:
        raise ProviderError("busy", retryable=True, kind="rate_limit", retry_after_s=0.5)

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    policy = RetryConfig(max_retries=3)
    with pytest.raises(ProviderError) as info:
        await call_with_retries(attempt, policy, np.random.default_rng(0), sleep=sleep)
    assert info.value.retryable and info.value.kind == "rate_limit"
    assert len(slept) == 3 and all(0.5 <= s <= 0.55 for s in slept)
