"""Helpers shared by the provider tests: the parent program, prompts and configs for the fake server."""

from __future__ import annotations

from typing import Any

from evolve.llm.base import LLM
from evolve.llm.config import LLMConfig
from evolve.llm.factory import build_llm
from evolve.testing.wire_server import WireServer

PARENT = """import math

# EVOLVE-BLOCK-START
def solve(n):
    step = 0.25
    return [i * step for i in range(n)]
# EVOLVE-BLOCK-END
"""

SYSTEM = "You improve Python programs. Reply with SEARCH/REPLACE blocks. " * 20

#: Retries fast enough for tests; Retry-After still wins when the server sends one.
FAST_RETRY: dict[str, float] = {"max_retries": 2, "initial_delay_s": 0.01, "max_delay_s": 0.05}

ENV = {"TEST_OPENAI_KEY": "sk-test-openai", "TEST_ANTHROPIC_KEY": "sk-ant-test"}


def openai_config(server: WireServer, **overrides: Any) -> LLMConfig:
    """A one-model OpenAI config pointed at ``server``."""
    fields: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-test",
        "base_url": server.openai_base_url,
        "api_key_env": "TEST_OPENAI_KEY",
        "temperature": 0.6,
        "max_tokens": 1000,
        "timeout_s": 2.0,
        "price_in_per_mtok": 2.0,
        "price_out_per_mtok": 8.0,
        "retry": FAST_RETRY,
    }
    return LLMConfig(**{**fields, **overrides})


def anthropic_config(server: WireServer, **overrides: Any) -> LLMConfig:
    """A one-model Anthropic config pointed at ``server``."""
    fields: dict[str, Any] = {
        "provider": "anthropic",
        "model": "claude-test",
        "base_url": server.anthropic_base_url,
        "api_key_env": "TEST_ANTHROPIC_KEY",
        "max_tokens": 1000,
        "timeout_s": 2.0,
        "price_in_per_mtok": 3.0,
        "price_out_per_mtok": 15.0,
        "price_cache_read_per_mtok": 0.3,
        "price_cache_write_per_mtok": 3.75,
        "retry": FAST_RETRY,
    }
    return LLMConfig(**{**fields, **overrides})


def build(config: LLMConfig) -> LLM:
    return build_llm(config, seed=7, environ=ENV)
