"""The Anthropic provider, driven through the real ``anthropic`` SDK against the wire server."""

from __future__ import annotations

import time

import pytest
from llm_helpers import SYSTEM, anthropic_config, build

from evolve.diffs import apply_edits, parse_edits
from evolve.llm.base import LLMError
from evolve.records import LLMRequest
from evolve.testing.wire_server import Drop, Fail, Hang, Malformed, WireServer


async def test_system_prompt_is_one_cached_block(wire: WireServer, prompt: LLMRequest) -> None:
    llm = build(anthropic_config(wire))
    await llm.complete(prompt)
    await llm.aclose()

    body = wire.seen("anthropic")[0].body
    assert body["system"] == [
        {"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}
    ]
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert body["model"] == "claude-test"
    assert body["max_tokens"] == 1000
    assert "temperature" not in body  # API 2026-10-21 rejects sampling parameters


async def test_reply_counts_cache_writes_then_reads_and_prices_them(
    wire: WireServer, prompt: LLMRequest
) -> None:
    llm = build(anthropic_config(wire))
    first = await llm.complete(prompt)
    second = await llm.complete(prompt)
    await llm.aclose()

    assert first.model == "claude-test"
    assert apply_edits(prompt.parent_code, parse_edits(first.text)) != prompt.parent_code
    assert first.cache_write_tokens > 0 and first.cache_read_tokens == 0
    assert second.cache_read_tokens == first.cache_write_tokens and second.cache_write_tokens == 0
    assert second.input_tokens == first.input_tokens  # cached tokens still count as input
    plain = second.input_tokens - second.cache_read_tokens
    expected = (plain * 3.0 + second.cache_read_tokens * 0.3 + second.output_tokens * 15.0) / 1e6
    assert second.cost_usd == pytest.approx(expected)
    assert second.cost_usd < first.cost_usd


async def test_overloaded_and_rate_limited_are_retried(
    wire: WireServer, prompt: LLMRequest
) -> None:
    llm = build(anthropic_config(wire))
    wire.script("anthropic", Fail("overloaded"), Fail("rate_limit", retry_after_s=0.1))
    started = time.perf_counter()
    reply = await llm.complete(prompt)
    await llm.aclose()

    assert reply.text
    assert len(wire.seen("anthropic")) == 3
    assert time.perf_counter() - started >= 0.1


@pytest.mark.parametrize("http", ["aiohttp", "httpx"])
async def test_timeout_is_retried_then_raises_timeout(
    wire: WireServer, prompt: LLMRequest, http: str
) -> None:
    llm = build(anthropic_config(wire, timeout_s=0.2, http_client=http))
    wire.script("anthropic", Hang(5), Hang(5), Hang(5))
    with pytest.raises(LLMError) as info:
        await llm.complete(prompt)
    await llm.aclose()

    assert (info.value.kind, info.value.retryable) == ("timeout", True)
    assert len(wire.seen("anthropic")) == 3


async def test_auth_error_names_model_and_key_variable(
    wire: WireServer, prompt: LLMRequest
) -> None:
    llm = build(anthropic_config(wire))
    wire.script("anthropic", Fail("auth"))
    with pytest.raises(LLMError) as info:
        await llm.complete(prompt)
    await llm.aclose()

    assert (info.value.kind, info.value.retryable) == ("auth", False)
    assert "claude-test" in str(info.value) and "TEST_ANTHROPIC_KEY" in str(info.value)
    assert len(wire.seen("anthropic")) == 1


async def test_prompt_too_long_is_a_context_length_error(
    wire: WireServer, prompt: LLMRequest
) -> None:
    llm = build(anthropic_config(wire))
    wire.script("anthropic", Fail("context_length"))
    with pytest.raises(LLMError) as info:
        await llm.complete(prompt)
    await llm.aclose()

    assert (info.value.kind, info.value.retryable) == ("context_length", False)
    assert len(wire.seen("anthropic")) == 1


async def test_unknown_model_is_not_found(wire: WireServer, prompt: LLMRequest) -> None:
    llm = build(anthropic_config(wire))
    wire.script("anthropic", Fail("not_found"))
    with pytest.raises(LLMError) as info:
        await llm.complete(prompt)
    await llm.aclose()

    assert (info.value.kind, info.value.retryable) == ("not_found", False)


async def test_malformed_responses_exhaust_retries_as_malformed(
    wire: WireServer, prompt: LLMRequest
) -> None:
    llm = build(anthropic_config(wire))
    wire.script("anthropic", Malformed(), Malformed(), Malformed())
    with pytest.raises(LLMError) as info:
        await llm.complete(prompt)
    await llm.aclose()

    assert (info.value.kind, info.value.retryable) == ("malformed", True)
    assert "malformed" in str(info.value)


@pytest.mark.parametrize("http", ["aiohttp", "httpx"])
async def test_dropped_connections_exhaust_retries_as_connection_error(
    wire: WireServer, prompt: LLMRequest, http: str
) -> None:
    llm = build(anthropic_config(wire, http_client=http))
    wire.script("anthropic", Drop(), Drop(), Drop())
    with pytest.raises(LLMError) as info:
        await llm.complete(prompt)
    await llm.aclose()

    assert (info.value.kind, info.value.retryable) == ("connection", True)
    assert len(wire.seen("anthropic")) == 3
