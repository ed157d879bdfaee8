"""The fake wire server itself: default replies, the failure mix, the thread runner and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter

import openai
import pytest
from llm_helpers import PARENT, build, openai_config

from evolve.diffs import apply_edits, evolve_blocks, parse_edits
from evolve.llm.base import LLMError
from evolve.records import LLMRequest
from evolve.testing.wire_server import (
    GARBAGE_TEXT,
    FailureMix,
    WireServer,
    parent_program,
    serve_in_thread,
)


def test_parent_program_prefers_the_fence_with_an_evolve_block() -> None:
    prompt = f"Inspiration:\n```python\nx = 1\n```\nParent:\n```python\n{PARENT}```\n"
    assert parent_program(prompt) == PARENT
    assert parent_program("no code here") is None


async def test_default_reply_edits_a_literal_inside_the_evolve_block(prompt: LLMRequest) -> None:
    async with WireServer(FailureMix(seed=3)) as server:
        llm = build(openai_config(server))
        texts = [(await llm.complete(prompt)).text for _ in range(5)]
        await llm.aclose()

    for text in texts:
        child = apply_edits(PARENT, parse_edits(text))
        assert child != PARENT
        ((start, stop),) = evolve_blocks(PARENT)
        before, after = PARENT.split("\n")[:start], PARENT.split("\n")[stop:]
        lines = child.split("\n")
        assert lines[:start] == before
        assert lines[len(lines) - len(after) :] == after


async def test_constant_edits_nudge_one_literal_of_the_block_each_time(prompt: LLMRequest) -> None:
    async with WireServer(FailureMix(seed=3, edits="constant")) as server:
        llm = build(openai_config(server))
        texts = [(await llm.complete(prompt)).text for _ in range(20)]
        await llm.aclose()

    children = [apply_edits(PARENT, parse_edits(text)) for text in texts]
    assert len(set(children)) == len(children)  # a new value each time: no duplicate children
    for child in children:
        changed = [(a, b) for a, b in zip(PARENT.split("\n"), child.split("\n"), strict=True) if a != b]
        assert len(changed) == 1 and changed[0][0] == "    step = 0.25", changed
        assert changed[0][1].startswith("    step = ")
        float(changed[0][1].split("= ")[1])  # still one number


async def test_failure_mix_answers_in_the_configured_proportions(prompt: LLMRequest) -> None:
    mix = FailureMix(latency_s=0.0, fail_rate=0.25, garbage_rate=0.25, seed=1)
    async with WireServer(mix) as server:
        llm = build(openai_config(server, retry={"max_retries": 0}))
        outcomes: Counter[str] = Counter()
        for _ in range(200):
            try:
                reply = await llm.complete(prompt)
                outcomes["garbage" if reply.text == GARBAGE_TEXT else "edit"] += 1
            except LLMError as exc:
                outcomes[exc.kind] += 1
        await llm.aclose()

    assert set(outcomes) == {"server", "garbage", "edit"}
    assert 30 <= outcomes["server"] <= 70 and 30 <= outcomes["garbage"] <= 70


def test_thread_server_serves_sync_clients_and_records_requests() -> None:
    with serve_in_thread(FailureMix(latency_s=0.01)) as server:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
        completion = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": f"```python\n{PARENT}```"}]
        )
        client.close()
        with urllib.request.urlopen(f"{server.anthropic_base_url}/health", timeout=5) as resp:
            assert resp.status == 200
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"{server.anthropic_base_url}/nowhere", timeout=5)
    assert "SEARCH" in (completion.choices[0].message.content or "")
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    assert server.seen("openai")[0].body["model"] == "m"


def test_cli_prints_its_port_and_serves() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "evolve.testing.wire_server", "--port", "0", "--latency", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        body = json.dumps({"model": "m", "max_tokens": 10, "messages": []}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/messages",
            data=body,
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            reply = json.loads(resp.read())
        assert reply["type"] == "message" and reply["usage"]["output_tokens"] > 0
    finally:
        proc.terminate()
        proc.wait(5)
