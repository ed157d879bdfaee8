"""A model behind the OpenAI chat-completions API: OpenAI itself or any compatible server.

``provider: local`` (vLLM, Ollama, llama.cpp, SGLang, ...) uses this class too, with its own
``base_url`` and, when the server needs none, a dummy key. The client is injected (built by
:mod:`evolve.llm.factory` with ``max_retries=0``); this class maps a request to the API, the
SDK's exceptions to :class:`~evolve.llm.errors.ProviderError`, and the response to an
:class:`~evolve.records.LLMReply` with tokens, latency and cost.
"""

from __future__ import annotations

from typing import Any

import openai
from openai.types.chat import ChatCompletion

from evolve.llm.errors import (
    ProviderError,
    classify_status,
    empty_reply,
    malformed_reply,
)
from evolve.llm.pricing import Usage
from evolve.llm.sdk_model import SDKErrors, SDKModel
from evolve.records import LLMReply, LLMRequest

__all__ = ["OpenAIChatModel"]


class OpenAIChatModel(SDKModel[openai.AsyncOpenAI, ChatCompletion]):
    """One chat model on an OpenAI-compatible endpoint, retried and bounded in concurrency."""

    errors = SDKErrors(
        openai.APIStatusError, openai.APITimeoutError, openai.APIConnectionError, openai.APIError
    )

    def _body(self, request: LLMRequest) -> dict[str, Any]:
        """The request's JSON body, exactly as ``chat.completions.create`` would send it."""
        spec = self._spec
        body: dict[str, Any] = {
            "model": spec.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        # OpenAI's own API replaced max_tokens with max_completion_tokens (reasoning models reject
        # the old name); compatible servers mostly still expect max_tokens.
        tokens_key = "max_completion_tokens" if spec.provider == "openai" else "max_tokens"
        body[tokens_key] = spec.max_tokens
        if spec.temperature is not None:
            body["temperature"] = spec.temperature
        if spec.extra_body:
            body.update(spec.extra_body)
        return body

    async def _send(self, request: LLMRequest) -> ChatCompletion:
        # The SDK's documented call for a ready body: the same request on the wire as
        # chat.completions.create, without its typed-params transform (~0.6 ms of CPU per call,
        # and the identity for plain-text messages).
        return await self._client.post(
            "/chat/completions",
            cast_to=ChatCompletion,
            body=self._body(request),
            options={"timeout": self._spec.timeout_s, "security": {"bearer_auth": True}},
        )

    def _status_error(self, exc: openai.APIStatusError) -> ProviderError:
        body = exc.body if isinstance(exc.body, dict) else {}
        message = str(body.get("message") or exc.message)
        return classify_status(
            self._ctx,
            exc.status_code,
            message,
            code=exc.code,
            headers=dict(exc.response.headers.items()),
        )

    def _reply(self, response: ChatCompletion, latency: float) -> LLMReply:
        if not isinstance(response.choices, list):
            raise malformed_reply(self._ctx, "no choices field")
        if not response.choices:
            raise empty_reply(self._ctx, "no choices")
        choice = response.choices[0]
        text = choice.message.content or ""
        if not text.strip():
            raise empty_reply(self._ctx, f"finish_reason={choice.finish_reason}")
        return self._make_reply(text, _usage(response), latency)


def _usage(response: ChatCompletion) -> Usage:
    """Token counts of a chat completion; ``prompt_tokens`` already includes cached tokens."""
    usage = response.usage
    if usage is None:
        return Usage()
    details = usage.prompt_tokens_details
    return Usage(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        cache_read_tokens=(details.cached_tokens or 0) if details else 0,
        cache_write_tokens=(details.cache_write_tokens or 0) if details else 0,
    )
