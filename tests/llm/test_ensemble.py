"""EnsembleLLM routing, bandit feedback, and per-provider concurrency through the wire server."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import numpy as np
import pytest
from llm_helpers import ENV, FAST_RETRY
from scipy.stats import chisquare

from evolve.llm.config import LLMConfig
from evolve.llm.ensemble import EnsembleLLM
from evolve.llm.factory import build_llm
from evolve.records import LLMReply, LLMRequest
from evolve.testing.wire_server import Reply, WireServer


class EchoModel:
    """A member that answers at once with its own name."""

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    async def complete(self, request: LLMRequest) -> LLMReply:
        return LLMReply(model=self._name, text="ok", cost_usd=0.01)

    async def aclose(self) -> None:
        return None


def ensemble_config(server: WireServer, **overrides: object) -> LLMConfig:
    models = [
        {
            "provider": "openai",
            "model": "gpt-fast",
            "base_url": server.openai_base_url,
            "api_key_env": "TEST_OPENAI_KEY",
            "timeout_s": 5.0,
            "max_concurrency": 3,
            "weight": 0.75,
            "price_in_per_mtok": 1.0,
        },
        {
            "provider": "anthropic",
            "model": "claude-slow",
            "base_url": server.anthropic_base_url,
            "api_key_env": "TEST_ANTHROPIC_KEY",
            "timeout_s": 5.0,
            "max_concurrency": 1,
            "weight": 0.25,
            "price_in_per_mtok": 3.0,
        },
    ]
    return LLMConfig(provider="ensemble", models=models, retry=FAST_RETRY, **overrides)


async def test_weights_are_honoured_over_many_draws(prompt: LLMRequest) -> None:
    members = [EchoModel("a"), EchoModel("b"), EchoModel("c")]
    llm = EnsembleLLM(members, [5.0, 3.0, 2.0], np.random.default_rng(3))
    replies = [await llm.complete(prompt) for _ in range(3000)]
    counts = Counter(r.model for r in replies)
    observed = [counts["a"], counts["b"], counts["c"]]
    assert chisquare(observed, f_exp=[1500, 900, 600]).pvalue > 0.01
    assert llm.probabilities() == pytest.approx({"a": 0.5, "b": 0.3, "c": 0.2})


async def test_same_seed_gives_the_same_sequence_of_models(prompt: LLMRequest) -> None:
    def run() -> list[str]:
        llm = EnsembleLLM([EchoModel("a"), EchoModel("b")], [1, 1], np.random.default_rng(5))
        return [llm.choose().name for _ in range(50)]

    assert run() == run()


@pytest.mark.parametrize("bandit", ["ucb1", "thompson"])
async def test_reports_shift_proposals_toward_the_model_whose_children_improve(
    prompt: LLMRequest, bandit: str
) -> None:
    llm = EnsembleLLM(
        [EchoModel("good"), EchoModel("bad")],
        [1.0, 1.0],
        np.random.default_rng(9),
        bandit=bandit,  # type: ignore[arg-type]
    )
    outcome = np.random.default_rng(10)
    late: Counter[str] = Counter()
    for i in range(400):
        reply = await llm.complete(prompt)
        rate = 0.5 if reply.model == "good" else 0.1
        gain = 0.01 if outcome.random() < rate else -0.05  # fitness gains, as the controller sends
        llm.report(reply.model, gain, reply.cost_usd)
        if i >= 200:
            late[reply.model] += 1
    assert late["good"] > 3 * late["bad"]
    assert llm.stats["good"].reports + llm.stats["bad"].reports == 400


def test_report_for_an_unknown_model_is_an_error() -> None:
    llm = EnsembleLLM([EchoModel("a")], [1.0], np.random.default_rng(0))
    with pytest.raises(KeyError, match="nope"):
        llm.report("nope", True, 0.0)


def test_member_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        EnsembleLLM([EchoModel("a"), EchoModel("a")], [1, 1], np.random.default_rng(0))


async def test_built_ensemble_routes_to_both_providers(
    wire: WireServer, prompt: LLMRequest
) -> None:
    llm = build_llm(ensemble_config(wire), seed=1, environ=ENV)
    assert isinstance(llm, EnsembleLLM)
    replies = [await llm.complete(prompt) for _ in range(40)]
    await llm.aclose()

    models = Counter(r.model for r in replies)
    assert set(models) == {"gpt-fast", "claude-slow"}
    assert len(wire.seen("openai")) == models["gpt-fast"]
    assert len(wire.seen("anthropic")) == models["claude-slow"]


async def test_concurrency_is_bounded_per_provider_and_slow_one_stalls_nobody(
    wire: WireServer, prompt: LLMRequest
) -> None:
    llm = build_llm(ensemble_config(wire), seed=1, environ=ENV)
    assert isinstance(llm, EnsembleLLM)
    fast, slow = llm.members
    wire.script("anthropic", *[Reply(delay_s=0.6)] * 2)
    wire.script("openai", *[Reply(delay_s=0.1)] * 9)
    started = time.perf_counter()
    slow_tasks = [asyncio.create_task(slow.complete(prompt)) for _ in range(2)]
    fast_replies = await asyncio.gather(*(fast.complete(prompt) for _ in range(9)))
    fast_done = time.perf_counter() - started
    await asyncio.gather(*slow_tasks)
    await llm.aclose()

    assert len(fast_replies) == 9
    assert wire.max_in_flight("openai") == 3
    assert wire.max_in_flight("anthropic") == 1
    assert fast_done < 0.5  # three waves of 0.1 s, never queued behind a 0.6 s Anthropic call


async def test_a_requests_model_depends_on_its_seed_not_on_call_order(prompt: LLMRequest) -> None:
    seeds = list(range(100, 160))

    async def route(order: list[int]) -> dict[int, str]:
        llm = EnsembleLLM([EchoModel("a"), EchoModel("b"), EchoModel("c")], [1, 1, 1], np.random.default_rng(5))
        return {s: (await llm.complete(prompt.model_copy(update={"seed": s}))).model for s in order}

    in_order = await route(seeds)
    reversed_ = await route(seeds[::-1])
    assert in_order == reversed_
    assert len(set(in_order.values())) == 3  # still spread over the members
