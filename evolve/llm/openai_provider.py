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

from evolve.llm.errors import ProviderError, classify_status, empty_reply, malformed_reply
from evolve.llm.pricing import Usage
from evolve.llm.sdk_model import SDKErrors, SDKModel, json_int, json_object
from evolve.records import LLMReply, LLMRequest

__all__ = ["OpenAIChatModel"]


class OpenAIChatModel(SDKModel[openai.AsyncOpenAI]):
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

    async def _send(self, request: LLMRequest) -> object:
        # The SDK's documented call for a ready body: the same request on the wire as
        # chat.completions.create, without its typed-params transform (the identity for
        # plain-text messages); ``cast_to=object`` skips building the typed ChatCompletion.
        # Together ~1 ms of CPU per call. The reply is read from the JSON in :meth:`_reply`.
        return await self._client.post(
            "/chat/completions",
            cast_to=object,
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

    def _reply(self, response: object, latency: float) -> LLMReply:
        body = json_object(response, self._ctx, "the response")
        choices = body.get("choices")
        if not isinstance(choices, list):
            raise malformed_reply(self._ctx, "no choices field")
        if not choices:
            raise empty_reply(self._ctx, "no choices")
        choice = json_object(choices[0], self._ctx, "choices[0]")
        message = json_object(choice.get("message"), self._ctx, "choices[0].message")
        text = message.get("content") or ""
        if not isinstance(text, str):
            raise malformed_reply(self._ctx, "choices[0].message.content is not a string")
        if not text.strip():
            raise empty_reply(self._ctx, f"finish_reason={choice.get('finish_reason')}")
        return self._make_reply(text, self._usage(body.get("usage")), latency)

    def _usage(self, usage: object) -> Usage:
        """Token counts; ``prompt_tokens`` already includes cached tokens."""
        fields = json_object(usage, self._ctx, "usage", optional=True)
        details = json_object(
            fields.get("prompt_tokens_details"), self._ctx, "usage.prompt_tokens_details", optional=True
        )
        return Usage(
            input_tokens=json_int(fields, "prompt_tokens", self._ctx),
            output_tokens=json_int(fields, "completion_tokens", self._ctx),
            cache_read_tokens=json_int(details, "cached_tokens", self._ctx),
            cache_write_tokens=json_int(details, "cache_write_tokens", self._ctx),
        )
