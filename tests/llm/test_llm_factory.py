"""build_llm: the one composition root of the model layer."""

from __future__ import annotations

import pytest
from llm_helpers import ENV

from evolve.errors import UserError
from evolve.llm.anthropic_provider import AnthropicModel
from evolve.llm.config import LLMConfig
from evolve.llm.ensemble import EnsembleLLM
from evolve.llm.factory import build_llm
from evolve.llm.offline import OfflineMutator
from evolve.llm.openai_provider import OpenAIChatModel

# Nothing listens here: construction must not connect anywhere.
DEAD_URL = "http://127.0.0.1:9/v1"


def test_offline_is_built_from_seed_and_max_edits() -> None:
    llm = build_llm(LLMConfig(max_edits=2), seed=42, environ={})
    assert isinstance(llm, OfflineMutator)
    assert (llm.seed, llm.max_edits) == (42, 2)


async def test_providers_are_built_without_network() -> None:
    openai_llm = build_llm(
        LLMConfig(provider="openai", model="m", base_url=DEAD_URL, api_key_env="TEST_OPENAI_KEY"),
        seed=0,
        environ=ENV,
    )
    anthropic_llm = build_llm(
        LLMConfig(provider="anthropic", model="c", api_key_env="TEST_ANTHROPIC_KEY"),
        seed=0,
        environ=ENV,
    )
    assert isinstance(openai_llm, OpenAIChatModel) and openai_llm.name == "m"
    assert isinstance(anthropic_llm, AnthropicModel) and anthropic_llm.name == "c"
    await openai_llm.aclose()
    await anthropic_llm.aclose()


def test_missing_key_names_the_model_and_the_variable() -> None:
    config = LLMConfig(provider="openai", model="gpt-x", api_key_env="MISSING_KEY_VAR")
    with pytest.raises(UserError, match=r"'gpt-x'.*MISSING_KEY_VAR"):
        build_llm(config, seed=0, environ={})


def test_local_without_key_variable_needs_no_environment() -> None:
    llm = build_llm(
        LLMConfig(provider="local", model="qwen", base_url=DEAD_URL), seed=0, environ={}
    )
    assert isinstance(llm, OpenAIChatModel)


async def test_models_on_one_endpoint_share_client_and_limit() -> None:
    member = {"provider": "local", "base_url": DEAD_URL}
    config = LLMConfig(
        provider="ensemble",
        models=[
            {**member, "model": "a", "max_concurrency": 5},
            {**member, "model": "b", "max_concurrency": 2},
            {**member, "model": "c", "base_url": "http://127.0.0.1:10/v1"},
        ],
    )
    llm = build_llm(config, seed=0, environ={})
    assert isinstance(llm, EnsembleLLM)
    a, b, c = llm.members
    assert isinstance(a, OpenAIChatModel) and isinstance(b, OpenAIChatModel)
    assert isinstance(c, OpenAIChatModel)
    assert a._limiter is b._limiter and a._client is b._client
    assert a._limiter is not c._limiter
    assert a._limiter._value == 2  # the tighter of the two limits
    await llm.aclose()
