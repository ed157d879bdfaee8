"""Servers that misbehave in time, shape or size, met through the real ``openai`` and
``anthropic`` clients: every failure is an :class:`LLMError` naming the model and endpoint."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from llm_helpers import anthropic_config, build, openai_config

from evolve.llm.base import LLMError
from evolve.llm.config import LLMConfig
from evolve.records import LLMRequest
from evolve.testing.wire_server import Api, Drop, Fail, Raw, Reply, Trickle, WireServer

Configure = Callable[..., LLMConfig]
APIS: list[tuple[Api, Configure]] = [("openai", openai_config), ("anthropic", anthropic_config)]
BOTH = pytest.mark.parametrize(("api", "configure"), APIS, ids=["openai", "anthropic"])


def _url(wire: WireServer, api: Api) -> str:
    return wire.openai_base_url if api == "openai" else wire.anthropic_base_url


async def _fail(wire: WireServer, configure: Configure, prompt: LLMRequest, **fields: Any) -> LLMError:
    llm = build(configure(wire, **fields))
    try:
        with pytest.raises(LLMError) as info:
            await llm.complete(prompt)
    finally:
        await llm.aclose()
    return info.value


@BOTH
@pytest.mark.parametrize("http", ["aiohttp", "httpx"])
async def test_a_trickling_server_meets_the_total_deadline_of_each_attempt(
    wire: WireServer, prompt: LLMRequest, api: Api, configure: Configure, http: str
) -> None:
    # A byte every 0.05 s never leaves the connection idle for timeout_s; the body needs seconds.
    wire.script(api, *[Trickle(interval_s=0.05)] * 3)
    retry = {"max_retries": 1, "initial_delay_s": 0.01, "max_delay_s": 0.01}
    started = time.perf_counter()
    error = await _fail(wire, configure, prompt, timeout_s=0.4, retry=retry, http_client=http)
    elapsed = time.perf_counter() - started

    assert (error.kind, error.retryable) == ("timeout", True)
    assert [r.kind for r in error.retried] == ["timeout"]
    assert len(wire.seen(api)) == 2
    assert 0.8 <= elapsed < 4.0  # the whole body would take over 30 s
    assert "0.4 s" in str(error) and _url(wire, api) in str(error)
    assert error.model == configure(wire).resolved_models()[0].model
    assert error.endpoint == _url(wire, api)


@BOTH
async def test_a_trickle_that_ends_within_the_deadline_is_a_reply(
    wire: WireServer, prompt: LLMRequest, api: Api, configure: Configure
) -> None:
    wire.script(api, Trickle(interval_s=0.0005, text="ok"))
    llm = build(configure(wire, timeout_s=5.0))
    reply = await llm.complete(prompt)
    await llm.aclose()

    assert reply.text == "ok"


GARBAGE_BODIES = {
    "html": b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    "truncated": b'{"id": "chatcmpl-1", "choices": [{"index": 0, "message": {"role": "assis',
    "not_json": b"\x00\xff\xfe garbage \x81",
    "empty": b"",
    "json_list": b"[1, 2, 3]",
    "json_string": b'"a completion"',
    "wrong_shape": b'{"choices": "none", "content": 7}',
    "bad_content": b'{"choices": [{"message": {"content": 42}}], "content": [{"type": "text", "text": 42}]}',
}


@BOTH
@pytest.mark.parametrize("body", GARBAGE_BODIES.values(), ids=GARBAGE_BODIES.keys())
async def test_a_200_that_is_not_a_completion_is_a_retried_malformed_reply(
    wire: WireServer, prompt: LLMRequest, api: Api, configure: Configure, body: bytes
) -> None:
    wire.script(api, Raw(body), Raw(body))
    llm = build(configure(wire))
    reply = await llm.complete(prompt)  # the third attempt gets a real completion
    await llm.aclose()

    assert reply.text
    assert [r.kind for r in reply.retried] == ["malformed", "malformed"]
    assert all("malformed" in r.message and _url(wire, api) in r.message for r in reply.retried)


@BOTH
async def test_malformed_replies_exhaust_retries_as_one_line_llm_error(
    wire: WireServer, prompt: LLMRequest, api: Api, configure: Configure
) -> None:
    wire.script(api, *[Raw(GARBAGE_BODIES["truncated"], content_type="text/html")] * 3)
    error = await _fail(wire, configure, prompt)

    assert (error.kind, error.retryable) == ("malformed", True)
    assert "\n" not in str(error)


@BOTH
async def test_a_retry_after_beyond_the_budget_fails_at_once_as_rate_limited(
    wire: WireServer, prompt: LLMRequest, api: Api, configure: Configure
) -> None:
    wire.script(api, Fail("rate_limit", retry_after_s=3600))
    retry = {"max_retries": 3, "initial_delay_s": 0.01, "max_retry_after_s": 60}
    started = time.perf_counter()
    error = await _fail(wire, configure, prompt, retry=retry)

    assert time.perf_counter() - started < 1.0  # no sleep for the hour asked
    assert len(wire.seen(api)) == 1
    assert (error.kind, error.retryable) == ("rate_limited", True)
    message = str(error)
    assert "3600 s" in message and "max_retry_after_s=60" in message
    assert _url(wire, api) in message and error.model is not None and error.model in message
    assert error.endpoint == _url(wire, api)
    assert "\n" not in message


@BOTH
@pytest.mark.parametrize(
    "step", [Fail("auth"), Fail("server"), Drop(), Raw(b"<html>")], ids=["auth", "server", "drop", "raw"]
)
async def test_every_failed_call_names_its_model_and_endpoint(
    wire: WireServer, prompt: LLMRequest, api: Api, configure: Configure, step: Fail | Drop | Raw
) -> None:
    wire.script(api, *[step] * 3)
    error = await _fail(wire, configure, prompt)

    assert error.endpoint == _url(wire, api)
    assert error.model == configure(wire).resolved_models()[0].model


@BOTH
async def test_a_reply_beyond_max_reply_chars_is_a_retried_malformed_reply(
    wire: WireServer, prompt: LLMRequest, api: Api, configure: Configure
) -> None:
    huge = "x" * 300_001
    wire.script(api, Reply(huge), Reply(huge), Reply("ok"))
    llm = build(configure(wire))
    reply = await llm.complete(prompt)
    await llm.aclose()

    assert reply.text == "ok"
    assert [r.kind for r in reply.retried] == ["malformed", "malformed"]
    assert "300001 chars" in reply.retried[0].message
    assert "llm.max_reply_chars=200000" in reply.retried[0].message


@BOTH
async def test_max_reply_chars_is_configurable(
    wire: WireServer, prompt: LLMRequest, api: Api, configure: Configure
) -> None:
    wire.script(api, Reply("y" * 50), Reply("y" * 40))
    llm = build(configure(wire, max_reply_chars=40))
    reply = await llm.complete(prompt)
    await llm.aclose()

    assert reply.text == "y" * 40
    assert [r.kind for r in reply.retried] == ["malformed"]
