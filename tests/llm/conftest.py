"""Fixtures for the provider tests: the fake wire server and a prompt holding a parent program."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from llm_helpers import PARENT, SYSTEM

from evolve.records import LLMRequest, Message
from evolve.testing.wire_server import WireServer


@pytest.fixture
async def wire() -> AsyncIterator[WireServer]:
    async with WireServer() as server:
        yield server


@pytest.fixture
def prompt() -> LLMRequest:
    user = f"Improve this program.\n\n```python\n{PARENT}```\n"
    return LLMRequest(
        messages=(Message(role="system", content=SYSTEM), Message(role="user", content=user)),
        parent_code=PARENT,
    )
