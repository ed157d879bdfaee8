"""``evolve check``: what can be found out before a run spends money.

The problem loads; its initial program evaluates and scores the same twice (a scorer or a
program that does not repeat itself makes a seeded run unrepeatable); each configured model
answers a tiny request (key, URL, model name); the rendered prompt fits each model's configured
context; the cost of one iteration and of the run, estimated from the configured prices.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from evolve.config import RunConfig
from evolve.errors import UserError
from evolve.llm.config import LLMConfig, ModelSpec, RetryConfig
from evolve.problem import Problem, load_problem
from evolve.records import LLMRequest, Message, Program, Status

#: Characters per token, for estimates: code and English run 3.5-4.5 with the usual tokenizers;
#: the low end, so that an estimate errs toward "does not fit" and "costs more".
CHARS_PER_TOKEN = 3.5


@dataclass
class PreflightReport:
    """What was checked (one line each) and what failed (one line each)."""

    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def ok(self, text: str) -> None:
        self.lines.append(f"ok    {text}")

    def fail(self, text: str) -> None:
        self.lines.append(f"FAIL  {text}")
        self.failures.append(text)


def estimate_tokens(text: str) -> int:
    return int(len(text) / CHARS_PER_TOKEN) + 1


async def preflight(
    config: RunConfig, *, model_timeout_s: float = 60.0, environ: Mapping[str, str] | None = None
) -> PreflightReport:
    report = PreflightReport()
    try:
        problem = load_problem(config.problem)
    except UserError as exc:
        report.fail(f"problem: {exc}")
        return report
    report.ok(f"problem {problem.name} loads ({problem.root})")
    await _check_initial(problem, config, report)
    prompt_tokens = _prompt_tokens(problem, config)
    specs = config.llm.resolved_models()
    if not specs:
        report.ok(f"model: {config.llm.provider} (no network, no cost); prompt about {prompt_tokens:,} tokens")
        return report
    env = os.environ if environ is None else environ
    answers = await asyncio.gather(*(_ask(spec, config, env, model_timeout_s) for spec in specs))
    for spec, error in zip(specs, answers, strict=True):
        where = f"model {spec.model} at {spec.resolved_base_url()}"
        if error is None:
            report.ok(f"{where} answers")
        else:
            report.fail(f"{where}: {error}")
        _check_context(spec, prompt_tokens, report)
    _estimate_cost(specs, problem, prompt_tokens, config, report)
    return report


async def _check_initial(problem: Problem, config: RunConfig, report: PreflightReport) -> None:
    from evolve.app import build_evaluator

    primary = problem.spec.metrics.primary
    evaluator = build_evaluator(problem, config.evaluator.model_copy(update={"concurrency": 1}))
    try:
        results = [await evaluator.evaluate(problem.initial_code) for _ in range(2)]
    finally:
        await evaluator.aclose()
    first, second = results
    if first.status is not Status.EVALUATED:
        message = first.error.message.strip().splitlines()[-1] if first.error and first.error.message.strip() else ""
        report.fail(f"initial program: {first.status.value}: {message}")
        return
    a, b = first.metrics.get(primary), second.metrics.get(primary)
    if second.status is not Status.EVALUATED or a != b:
        shown = b if second.status is Status.EVALUATED else second.status.value
        report.fail(f"initial program: {primary} {a} then {shown}: it does not score the same twice "
                    "(a seeded run cannot repeat itself)")
        return
    report.ok(f"initial program scores {primary} = {a:.10g}, the same twice")


def _prompt_tokens(problem: Problem, config: RunConfig) -> int:
    """The prompt of a first iteration, with the initial program as the parent and as every
    inspiration the search shows (a later prompt holds programs of about that size)."""
    from evolve.prompts import PromptBuilder, PromptContext

    initial = Program(id="initial", run_id="check", iteration=0, parent_id=None, island=0, generation=0,
                      code=problem.initial_code, code_hash=None, status=Status.EVALUATED)
    ctx = PromptContext(parent=initial, mode="diff", top=[initial] * config.search.top_inspirations,
                        diverse=[initial] * config.search.diverse_inspirations)
    messages = PromptBuilder(problem).render(ctx)
    return sum(estimate_tokens(m.content) for m in messages)


async def _ask(spec: ModelSpec, config: RunConfig, environ: Mapping[str, str], timeout_s: float) -> str | None:
    """None if the model answers a tiny request, else why not (one line)."""
    from evolve.llm.factory import build_llm

    single = LLMConfig(
        provider=spec.provider, model=spec.model, base_url=spec.base_url, api_key_env=spec.api_key_env,
        temperature=spec.temperature, max_tokens=spec.max_tokens, timeout_s=min(spec.timeout_s, timeout_s),
        max_concurrency=1, extra_body=spec.extra_body, http_client=config.llm.http_client,
        retry=RetryConfig(max_retries=0),
    )
    try:
        llm = build_llm(single, seed=config.seed, environ=environ)
    except UserError as exc:
        return str(exc)
    request = LLMRequest(messages=(Message(role="user", content="Reply with the single word: ok"),))
    try:
        reply = await asyncio.wait_for(llm.complete(request), timeout_s)
    except TimeoutError:
        return f"no answer within {timeout_s:g} s"
    except Exception as exc:  # whatever the provider raised: its message is the finding
        return " ".join(str(exc).split()) or type(exc).__name__
    finally:
        await llm.aclose()
    return None if reply.text.strip() else "answered with an empty reply"


def _check_context(spec: ModelSpec, prompt_tokens: int, report: PreflightReport) -> None:
    need = prompt_tokens + spec.max_tokens
    if spec.context_tokens is None:
        report.ok(f"model {spec.model}: prompt about {prompt_tokens:,} tokens + {spec.max_tokens:,} out "
                  "(context size not configured: set llm.context_tokens to check it)")
    elif need > spec.context_tokens:
        report.fail(f"model {spec.model}: prompt about {prompt_tokens:,} tokens + max_tokens {spec.max_tokens:,} "
                    f"exceed its context of {spec.context_tokens:,} tokens")
    else:
        report.ok(f"model {spec.model}: prompt about {prompt_tokens:,} tokens + max_tokens {spec.max_tokens:,} "
                  f"fit its context of {spec.context_tokens:,}")


def _estimate_cost(
    specs: tuple[ModelSpec, ...], problem: Problem, prompt_tokens: int, config: RunConfig, report: PreflightReport
) -> None:
    """Per iteration: the prompt in, and out a reply of about the program's size (at most
    ``max_tokens``); the models weighted as the ensemble draws them."""
    total_weight = sum(s.weight for s in specs) or 1.0
    out_tokens = estimate_tokens(problem.initial_code)
    per_iteration = 0.0
    worst = 0.0
    for s in specs:
        share = s.weight / total_weight
        per_iteration += share * (prompt_tokens * s.price_in_per_mtok + min(out_tokens, s.max_tokens) * s.price_out_per_mtok) / 1e6
        worst += share * (prompt_tokens * s.price_in_per_mtok + s.max_tokens * s.price_out_per_mtok) / 1e6
    if all(s.price_in_per_mtok == 0 and s.price_out_per_mtok == 0 for s in specs):
        report.ok("cost: no prices configured (llm.price_in_per_mtok, llm.price_out_per_mtok): not estimated")
        return
    n = config.max_iterations
    budget = f"; max_cost_usd {config.max_cost_usd:g} stops it" if config.max_cost_usd else ""
    report.ok(f"cost: about ${per_iteration:.4g} per iteration (${worst:.4g} if every reply uses max_tokens), "
              f"about ${per_iteration * n:.4g} for {n} iterations (at most ${worst * n:.4g}){budget}")
