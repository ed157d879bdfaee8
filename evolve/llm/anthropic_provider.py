"""A model behind Anthropic's Messages API, with prompt caching of the stable system prompt.

The system message (problem description and rules, the same for every proposal of a run) is sent
as one system content block marked ``cache_control: {"type": "ephemeral"}``, so repeated
proposals read it from the prompt cache at a fraction of the input price. The client is
injected (built by :mod:`evolve.llm.factory` with ``max_retries=0``).
"""

from __future__ import annotations

from typing import Any

import anthropic

from evolve.llm.config import ModelSpec
from evolve.llm.errors import ProviderError, classify_status, empty_reply, malformed_reply
from evolve.llm.pricing import Usage
from evolve.llm.sdk_model import SDKErrors, SDKModel, json_int, json_object
from evolve.records import LLMReply, LLMRequest

__all__ = ["AnthropicModel", "anthropic_body"]


def anthropic_body(spec: ModelSpec, request: LLMRequest) -> dict[str, Any]:
    """The Messages API body for ``request``: system messages become one cached block.

    No sampling temperature: API version 2026-10-21 (the default of SDK 2.x) removed it and
    answers 400 to a request that sends one; config validation rejects it for Anthropic models.
    """
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    body: dict[str, Any] = {
        "model": spec.model,
        "max_tokens": spec.max_tokens,
        "messages": [
            {"role": m.role, "content": m.content} for m in request.messages if m.role != "system"
        ],
    }
    if system:
        body["system"] = [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}]
    if spec.extra_body:
        body.update(spec.extra_body)
    return body


class AnthropicModel(SDKModel[anthropic.AsyncAnthropic]):
    """One Claude model, retried and bounded in concurrency."""

    errors = SDKErrors(
        anthropic.APIStatusError,
        anthropic.APITimeoutError,
        anthropic.APIConnectionError,
        anthropic.APIError,
    )

    async def _send(self, request: LLMRequest) -> object:
        # ``messages.create`` posts this same body to this path; its typed-params transform is the
        # identity for text messages, and ``cast_to=object`` skips building the typed Message
        # (together ~1 ms of CPU per call). The reply is read from the JSON in :meth:`_reply`.
        return await self._client.post(
            "/v1/messages",
            cast_to=object,
            body=anthropic_body(self._spec, request),
            options={"timeout": self._spec.timeout_s},
        )

    def _status_error(self, exc: anthropic.APIStatusError) -> ProviderError:
        return classify_status(
            self._ctx,
            exc.status_code,
            exc.api_message or exc.message,
            code=exc.error_code or exc.type,
            headers=dict(exc.response.headers.items()),
        )

    def _reply(self, response: object, latency: float) -> LLMReply:
        body = json_object(response, self._ctx, "the response")
        content = body.get("content")
        if not isinstance(content, list):
            raise malformed_reply(self._ctx, "no content field")
        texts = [
            block.get("text") or ""
            for block in content
            if isinstance(block, dict) and block.get("type") == "text"
        ]
        if not all(isinstance(t, str) for t in texts):
            raise malformed_reply(self._ctx, "a text block's text is not a string")
        text = "".join(texts)
        if not text.strip():
            raise empty_reply(self._ctx, f"stop_reason={body.get('stop_reason')}")
        return self._make_reply(text, self._usage(body.get("usage")), latency)

    def _usage(self, usage: object) -> Usage:
        """Token counts; Anthropic's ``input_tokens`` excludes cached tokens, so add them."""
        fields = json_object(usage, self._ctx, "usage", optional=True)
        read = json_int(fields, "cache_read_input_tokens", self._ctx)
        write = json_int(fields, "cache_creation_input_tokens", self._ctx)
        return Usage(
            input_tokens=json_int(fields, "input_tokens", self._ctx) + read + write,
            output_tokens=json_int(fields, "output_tokens", self._ctx),
            cache_read_tokens=read,
            cache_write_tokens=write,
        )
