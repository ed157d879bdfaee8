"""The one place that constructs the model layer from an :class:`LLMConfig`.

Construction does no network I/O: SDK clients are created (they open connections lazily, on the
first request) and keys are read from the ``environ`` mapping passed in, never from
``os.environ`` directly, so tests and the CLI decide where secrets come from.

Models that share an endpoint (provider, base URL and key variable) share one SDK client and one
:class:`asyncio.Semaphore`, so the concurrency bound holds per provider endpoint, and a slow
endpoint only ever holds its own slots.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, cast

import numpy as np

from evolve.errors import UserError
from evolve.llm.base import LLM
from evolve.llm.config import LLMConfig, ModelSpec
from evolve.llm.ensemble import EnsembleLLM
from evolve.llm.offline import OfflineMutator

if TYPE_CHECKING:  # the SDKs take seconds to import: only a run that calls them loads them
    import anthropic
    import openai

__all__ = ["LOCAL_DUMMY_KEY", "build_llm"]

#: Sent as the key to local servers that need none (the OpenAI SDK insists on some key).
LOCAL_DUMMY_KEY = "sk-local-no-key"


@dataclass(frozen=True, slots=True)
class _EndpointKey:
    provider: str
    base_url: str
    key_env: str | None


@dataclass(frozen=True, slots=True)
class _Endpoint:
    client: openai.AsyncOpenAI | anthropic.AsyncAnthropic
    limiter: asyncio.Semaphore


def build_llm(config: LLMConfig, *, seed: int, environ: Mapping[str, str]) -> LLM:
    """Build the model layer ``config`` describes.

    Args:
        config: the validated ``llm`` config.
        seed: the run's seed; every random choice of the layer (ensemble draws, backoff jitter,
            the offline mutator) derives from it.
        environ: where API keys are looked up by the names in the config.

    Raises:
        UserError: a model's key variable is not set in ``environ``.
    """
    if config.provider == "offline":
        return OfflineMutator(seed=seed, max_edits=config.max_edits)
    specs = config.resolved_models()
    seeds = np.random.SeedSequence(seed).spawn(len(specs) + 1)
    endpoints: dict[_EndpointKey, _Endpoint] = {}
    members: list[LLM] = []
    for spec, child_seed in zip(specs, seeds[1:], strict=False):
        key = _key_of(spec)
        if key not in endpoints:
            limit = min(s.max_concurrency for s in specs if _key_of(s) == key)
            client = _client(spec, environ, config.http_client)
            endpoints[key] = _Endpoint(client, asyncio.Semaphore(limit))
        endpoint = endpoints[key]
        rng = np.random.default_rng(child_seed)
        members.append(_model(spec, endpoint, config, rng))
    if config.provider != "ensemble":
        return members[0]
    return EnsembleLLM(
        members,
        [s.weight for s in specs],
        np.random.default_rng(seeds[0]),
        bandit=config.bandit,
    )


def _key_of(spec: ModelSpec) -> _EndpointKey:
    return _EndpointKey(spec.provider, spec.resolved_base_url(), spec.resolved_key_env())


def _api_key(spec: ModelSpec, environ: Mapping[str, str]) -> str:
    """The key for ``spec`` from ``environ``; a dummy one for a keyless local server."""
    env = spec.resolved_key_env()
    if env is None:
        return LOCAL_DUMMY_KEY
    value = environ.get(env, "")
    if not value:
        raise UserError(
            f"llm: {spec.provider} model '{spec.model}' needs an API key in the environment "
            f"variable {env}, which is not set"
        )
    return value


def _client(
    spec: ModelSpec, environ: Mapping[str, str], http: Literal["aiohttp", "httpx"]
) -> openai.AsyncOpenAI | anthropic.AsyncAnthropic:
    """An SDK client with its own retries off: :mod:`evolve.llm.retry` owns that policy.

    ``http`` picks the SDK's transport: its ``DefaultAioHttpClient`` or its default httpx client.
    The client's timeout is a default only; each request passes its model's ``timeout_s``.
    """
    key = _api_key(spec, environ)
    url = spec.resolved_base_url()
    if spec.provider == "anthropic":
        import anthropic

        return anthropic.AsyncAnthropic(
            api_key=key, base_url=url, timeout=spec.timeout_s, max_retries=0,
            http_client=anthropic.DefaultAioHttpClient() if http == "aiohttp" else None,
        )
    import openai

    return openai.AsyncOpenAI(
        api_key=key, base_url=url, timeout=spec.timeout_s, max_retries=0,
        http_client=openai.DefaultAioHttpClient() if http == "aiohttp" else None,
    )


def _model(spec: ModelSpec, endpoint: _Endpoint, config: LLMConfig, rng: np.random.Generator) -> LLM:
    bound = config.max_reply_chars
    if spec.provider == "anthropic":
        from evolve.llm.anthropic_provider import AnthropicModel

        client = cast("anthropic.AsyncAnthropic", endpoint.client)
        return AnthropicModel(spec, client, endpoint.limiter, config.retry, rng, max_reply_chars=bound)
    from evolve.llm.openai_provider import OpenAIChatModel

    return OpenAIChatModel(
        spec, cast("openai.AsyncOpenAI", endpoint.client), endpoint.limiter, config.retry, rng, max_reply_chars=bound
    )
