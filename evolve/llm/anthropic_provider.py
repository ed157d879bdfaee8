"""A model behind Anthropic's Messages API, with prompt caching of the stable system prompt.

The system message (problem description and rules, the same for every proposal of a run) is sent
as one system content block marked ``cache_control: {"type": "ephemeral"}``, so repeated
proposals read it from the prompt cache at a fraction of the input price. The client is
injected (built by :mod:`evolve.llm.factory` with ``max_retries=0``).
"""

from __future__ import annotations

from typing import Any

import anthropic
from anthropic.types import Message as AnthropicMessage

from evolve.llm.config import ModelSpec
from evolve.llm.errors import (
    ProviderError,
    classify_status,
    empty_reply,
)
from evolve.llm.pricing import Usage
from evolve.llm.sdk_model import SDKErrors, SDKModel
from evolve.records import LLMReply, LLMRequest

__all__ = ["AnthropicModel", "anthropic_params"]


def anthropic_params(spec: ModelSpec, request: LLMRequest) -> dict[str, Any]:
    """The ``messages.create`` arguments for ``request``: system messages become one cached block.

    No sampling temperature: API version 2026-10-21 (the default of SDK 2.x) removed it and
    answers 400 to a request that sends one; config validation rejects it for Anthropic models.
    """
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    params: dict[str, Any] = {
        "model": spec.model,
        "timeout": spec.timeout_s,
        "max_tokens": spec.max_tokens,
        "messages": [
            {"role": m.role, "content": m.content} for m in request.messages if m.role != "system"
        ],
    }
    if system:
        params["system"] = [
            {"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}
        ]
    if spec.extra_body:
        params["extra_body"] = dict(spec.extra_body)
    return params


class AnthropicModel(SDKModel[anthropic.AsyncAnthropic, AnthropicMessage]):
    """One Claude model, retried and bounded in concurrency."""

    errors = SDKErrors(
        anthropic.APIStatusError,
        anthropic.APITimeoutError,
        anthropic.APIConnectionError,
        anthropic.APIError,
    )

    async def _send(self, request: LLMRequest) -> AnthropicMessage:
        message: AnthropicMessage = await self._client.messages.create(
            **anthropic_params(self._spec, request)
        )
        return message

    def _status_error(self, exc: anthropic.APIStatusError) -> ProviderError:
        return classify_status(
            self._ctx,
            exc.status_code,
            exc.api_message or exc.message,
            code=exc.error_code or exc.type,
            headers=dict(exc.response.headers.items()),
        )

    def _reply(self, response: AnthropicMessage, latency: float) -> LLMReply:
        text = "".join(block.text for block in response.content if block.type == "text")
        if not text.strip():
            raise empty_reply(self._ctx, f"stop_reason={response.stop_reason}")
        return self._make_reply(text, _usage(response), latency)


def _usage(response: AnthropicMessage) -> Usage:
    """Token counts of a message; Anthropic's ``input_tokens`` excludes cached tokens, so add them."""
    usage = response.usage
    read = usage.cache_read_input_tokens or 0
    write = usage.cache_creation_input_tokens or 0
    return Usage(
        input_tokens=usage.input_tokens + read + write,
        output_tokens=usage.output_tokens,
        cache_read_tokens=read,
        cache_write_tokens=write,
    )
