"""The OpenAI-compatible provider, driven through the real ``openai`` SDK against the wire server."""

from __future__ import annotations

import time

import pytest
from llm_helpers import build, openai_config

from evolve.diffs import apply_edits, parse_edits
from evolve.llm.base import LLMError
from evolve.llm.factory import LOCAL_DUMMY_KEY
from evolve.records import LLMRequest
from evolve.testing.wire_server import GARBAGE_TEXT, Drop, Fail, Hang, Malformed, Reply, WireServer


async def test_reply_carries_text_tokens_cost_and_model(
    wire: WireServer, prompt: LLMRequest
) -> None:
    llm = build(openai_config(wire))
    reply = await llm.complete(prompt)
    await llm.aclose()

    assert reply.model == "gpt-test"
    child = apply_edits(prompt.parent_code, parse_edits(reply.text))
    assert child != prompt.parent_code
    usage = wire.seen("openai")[0]
    assert reply.input_tokens > 0 and reply.output_tokens > 0
    expected = (reply.input_tokens * 2.0 + reply.output_tokens * 8.0) / 1e6
    assert reply.cost_usd == pytest.approx(expected)
    assert reply.latency_s > 0
    assert usage.body["model"] == "gpt-test"


async def test_request_sends_model_temperature_and_max_completion_tokens(
    wire: WireServer, prompt: LLMRequest
) -> None:
    llm = build(openai_config(wire))
    await llm.complete(prompt)
    await llm.aclose()

    seen = wire.seen("openai")[0]
    assert seen.body["temperature"] == 0.6
    assert seen.body["max_completion_tokens"] == 1000
    assert "max_tokens" not in seen.body
    assert [m["role"] for m in seen.body["messages"]] == ["system", "user"]
    assert seen.headers["authorization"] == "Bearer sk-test-openai"


async def test_local_server_gets_max_tokens_and_a_dummy_key(
    wire: WireServer, prompt: LLMRequest
) -> None:
    llm = build(openai_config(wire, provider="local", api_key_env=None, temperature=None))
    await llm.complete(prompt)
    await llm.aclose()

    seen = wire.seen("openai")[0]
    assert seen.body["max_tokens"] == 1000
    assert "temperature" not in seen.body
    assert seen.headers["authorization"] == f"Bearer {LOCAL_DUMMY_KEY}"


async def test_rate_limit_waits_for_retry_after_then_succeeds(
    wire: WireServer, prompt: LLMRequest
) -> None:
    # A backoff of seconds would be used without Retry-After; the server's 0.2 s must win.
    slow_backoff = {"max_retries": 2, "initial_delay_s": 5.0, "max_delay_s": 5.0}
    llm = build(openai_config(wire, retry=slow_backoff))
    wire.script("openai", Fail("rate_limit", retry_after_s=0.2))
    started = time.perf_counter()
    reply = await llm.complete(prompt)
    elapsed = time.perf_counter() - started
    await llm.aclose()

    assert reply.text
    assert len(wire.seen("openai")) == 2
    assert 0.2 <= elapsed < 1.0
    assert [r.kind for r in reply.retried] == ["rate_limit"]


async def test_server_error_is_retried_then_succeeds(wire: WireServer, prompt: LLMRequest) -> None:
    llm = build(openai_config(wire))
    wire.script("openai", Fail("server"), Fail("server"))
    reply = await llm.complete(prompt)
    await llm.aclose()

    assert reply.text
    assert len(wire.seen("openai")) == 3
    # The failed attempts travel with the reply, to be recorded with the call.
    assert [r.kind for r in reply.retried] == ["server", "server"]
    assert all("500" in r.message for r in reply.retried)


async def test_rate_limit_after_retries_raises_retryable(
    wire: WireServer, prompt: LLMRequest
) -> None:
    llm = build(openai_config(wire))
    wire.script("openai", *[Fail("rate_limit")] * 3)
    with pytest.raises(LLMError) as info:
        await llm.complete(prompt)
    await llm.aclose()

    assert (info.value.kind, info.value.retryable) == ("rate_limit", True)
    assert len(wire.seen("openai")) == 3  # the first attempt and max_retries=2
    assert [r.kind for r in info.value.retried] == ["rate_limit", "rate_limit"]  # then the last


@pytest.mark.parametrize("http", ["aiohttp", "httpx"])
async def test_timeout_is_retried_then_raises_timeout(
    wire: WireServer, prompt: LLMRequest, http: str
) -> None:
    llm = build(openai_config(wire, timeout_s=0.2, http_client=http))
    wire.script("openai", Hang(5), Hang(5), Hang(5))
    started = time.perf_counter()
    with pytest.raises(LLMError) as info:
        await llm.complete(prompt)
    await llm.aclose()

    assert (info.value.kind, info.value.retryable) == ("timeout", True)
    assert len(wire.seen("openai")) == 3
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize("http", ["aiohttp", "httpx"])
async def test_dropped_connection_is_retried(wire: WireServer, prompt: LLMRequest, http: str) -> None:
    llm = build(openai_config(wire, http_client=http))
    wire.script("openai", Drop())
    reply = await llm.complete(prompt)
    await llm.aclose()

    assert reply.text
    assert len(wire.seen("openai")) == 2


@pytest.mark.parametrize("http", ["aiohttp", "httpx"])
async def test_dropped_connections_exhaust_retries_as_connection_error(
    wire: WireServer, prompt: LLMRequest, http: str
) -> None:
    # The SDKs' aiohttp transport raises a dropped connection as a connect timeout: still a
    # connection failure here, told apart by its cause.
    llm = build(openai_config(wire, http_client=http))
    wire.script("openai", Drop(), Drop(), Drop())
    with pytest.raises(LLMError) as info:
        await llm.complete(prompt)
    await llm.aclose()

    assert (info.value.kind, info.value.retryable) == ("connection", True)
    assert len(wire.seen("openai")) == 3
    assert [r.kind for r in info.value.retried] == ["connection", "connection"]


async def test_reply_without_diff_is_returned_as_text(wire: WireServer, prompt: LLMRequest) -> None:
    llm = build(openai_config(wire))
    wire.script("openai", Reply(GARBAGE_TEXT))
    reply = await llm.complete(prompt)
    await llm.aclose()

    assert reply.text == GARBAGE_TEXT


async def test_empty_reply_raises_retryable_empty(wire: WireServer, prompt: LLMRequest) -> None:
    llm = build(openai_config(wire))
    wire.script("openai", Reply(empty=True))
    with pytest.raises(LLMError) as info:
        await llm.complete(prompt)
    await llm.aclose()

    assert (info.value.kind, info.value.retryable) == ("empty", True)
    assert len(wire.seen("openai")) == 1  # billed once; the caller decides whether to retry


async def test_auth_error_is_not_retried_and_names_model_and_key_variable(
    wire: WireServer, prompt: LLMRequest
) -> None:
    llm = build(openai_config(wire))
    wire.script("openai", Fail("auth"))
    with pytest.raises(LLMError) as info:
        await llm.complete(prompt)
    await llm.aclose()

    error = info.value
    assert (error.kind, error.retryable) == ("auth", False)
    assert "gpt-test" in str(error) and "TEST_OPENAI_KEY" in str(error)
    assert "\n" not in str(error)
    assert len(wire.seen("openai")) == 1


async def test_context_length_error_has_its_own_kind(wire: WireServer, prompt: LLMRequest) -> None:
    llm = build(openai_config(wire))
    wire.script("openai", Fail("context_length"))
    with pytest.raises(LLMError) as info:
        await llm.complete(prompt)
    await llm.aclose()

    assert (info.value.kind, info.value.retryable) == ("context_length", False)
    assert len(wire.seen("openai")) == 1


@pytest.mark.parametrize(
    ("fail", "kind"), [("not_found", "not_found"), ("bad_request", "bad_request")]
)
async def test_client_errors_are_not_retried(
    wire: WireServer, prompt: LLMRequest, fail: str, kind: str
) -> None:
    llm = build(openai_config(wire))
    wire.script("openai", Fail(fail))  # type: ignore[arg-type]
    with pytest.raises(LLMError) as info:
        await llm.complete(prompt)
    await llm.aclose()

    assert (info.value.kind, info.value.retryable) == (kind, False)
    assert "gpt-test" in str(info.value)
    assert len(wire.seen("openai")) == 1


async def test_malformed_response_is_retried(wire: WireServer, prompt: LLMRequest) -> None:
    llm = build(openai_config(wire))
    wire.script("openai", Malformed())
    reply = await llm.complete(prompt)
    await llm.aclose()

    assert reply.text
    assert len(wire.seen("openai")) == 2
