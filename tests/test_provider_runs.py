"""Whole runs through the real SDK clients against the local wire-protocol server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from evolve.app import build_controller, start_run
from evolve.config import RunConfig
from evolve.problem import Problem
from evolve.report import run_html, run_status
from evolve.testing.wire_server import FailureMix, WireServer


def _config(problem: Problem, tmp_path: Path, llm: dict[str, Any], **over: Any) -> RunConfig:
    return RunConfig.model_validate({
        "problem": str(problem.root), "runs_dir": str(tmp_path / "runs"), "run_name": "w",
        "max_iterations": 24, "progress": False, "evaluator": {"concurrency": 2},
        "search": {"islands": 2, "in_flight": 4},
        "llm": {**llm, "retry": {"initial_delay_s": 0.01, "max_delay_s": 0.05, "max_retries": 1}},
        **over,
    })


async def _run(config: RunConfig) -> Any:
    opened = start_run(config)
    problem, db = opened.problem, opened.db
    controller = build_controller(run_id="w", config=config, problem=problem, db=db)
    try:
        summary = await controller.run()
    finally:
        await controller.aclose()
    return summary, db


async def test_local_server_with_failures_and_garbage_completes_and_reports_kinds(toy: Problem, tmp_path: Path) -> None:
    async with WireServer(FailureMix(latency_s=0.0, fail_rate=0.2, garbage_rate=0.2, seed=3)) as server:
        config = _config(toy, tmp_path, {
            "provider": "local", "model": "qwen-local", "base_url": server.openai_base_url,
            "price_in_per_mtok": 1.0, "price_out_per_mtok": 2.0,
        })
        summary, db = await _run(config)
        sent = server.failures_sent("openai", "server")
    assert summary.status == "finished" and summary.iterations == 24
    # Every 500 the server sent is in the database: retried (then the call went on), or the
    # call's last failure (retries exhausted: one retry here).
    failures = {f["kind"]: f for f in db.llm_failures("w")}
    assert sent >= 2 and failures["server"]["retried"] >= 1
    assert failures["server"]["retried"] + failures["server"]["failed"] == sent
    counts = db.status_counts("w")
    assert sum(counts.values()) == 25
    assert counts.get("diff_error", 0) >= 1  # the garbage replies
    assert counts.get("evaluated", 0) >= 5
    usage = db.llm_usage("w")
    assert usage[0]["model"] == "qwen-local" and usage[0]["input_tokens"] > 0 and usage[0]["cost_usd"] > 0
    assert usage[0]["retried"] == failures["server"]["retried"]
    assert counts.get("llm_error", 0) == failures["server"]["failed"]
    # Shown in an 80-column terminal (or a pipe, which rich gives 80 columns), no figure cut.
    console = Console(record=True, width=80)
    console.print(run_status(db, "w"))
    text = console.export_text()
    assert "diff_error" in text and "qwen-local" in text
    assert "…" not in text
    narrow_rows = [[c.strip() for c in ln.split("│") if c.strip()] for ln in text.splitlines()]
    assert ["qwen-local", "server", str(failures["server"]["retried"]), str(failures["server"]["failed"])] in narrow_rows
    children = [r for r in narrow_rows if r[:1] == ["qwen-local"] and len(r) == 5]
    # Every iteration whose call got a reply made a child of this model; a call that failed after
    # its retries (llm_error, at 20% failures and one retry: in about half the runs) made none.
    no_reply = counts.get("llm_error", 0)
    assert len(children) == 1 and children[0][1] == str(24 - no_reply)
    assert children[0][2] == str(sum(n for st, n in counts.items() if st not in ("evaluated", "duplicate", "llm_error")))
    calls = [r for r in narrow_rows if r[:1] == ["qwen-local"] and len(r) == 8]
    assert len(calls) == 1 and calls[0][3] == str(usage[0]["retried"])
    # The run page draws the score against the dollars spent: every call's cost, summed.
    spend = db.llm_spend("w")
    assert len(spend) == usage[0]["calls"] and {i for i, _, _ in spend} <= set(range(1, 25))
    total = sum(c for _, c, _ in spend)
    assert abs(total - usage[0]["cost_usd"]) < 1e-12
    page = run_html(db, "w")
    assert "score against spend" in page and f"${total:.4g}" in page and ">qwen-local<" in page
    db.close()


async def test_anthropic_protocol_run(toy: Problem, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", "sk-test")
    async with WireServer(FailureMix(seed=1)) as server:
        config = _config(toy, tmp_path, {
            "provider": "anthropic", "model": "claude-test", "base_url": server.anthropic_base_url,
            "api_key_env": "TEST_ANTHROPIC_KEY",
        }, max_iterations=8)
        summary, db = await _run(config)
        seen = server.seen("anthropic")
    assert summary.status == "finished"
    assert summary.best is not None and summary.initial_score is not None
    assert summary.best.metrics["energy"] <= summary.initial_score
    assert len(seen) == 8
    assert seen[0].body["system"][0]["cache_control"] == {"type": "ephemeral"}
    db.close()


async def test_auth_error_from_the_server_stops_the_run_with_one_clear_line(
    toy: Problem, tmp_path: Path, monkeypatch: Any
) -> None:
    import pytest

    from evolve.controller import RunAborted
    from evolve.testing.wire_server import Fail

    monkeypatch.setenv("MY_PROVIDER_KEY", "sk-wrong")
    async with WireServer(FailureMix(seed=2)) as server:
        for _ in range(20):
            server.script("openai", Fail("auth"))
        config = _config(toy, tmp_path, {
            "provider": "local", "model": "gpt-x", "base_url": server.openai_base_url,
            "api_key_env": "MY_PROVIDER_KEY",
        })
        opened = start_run(config)
        problem, db = opened.problem, opened.db
        controller = build_controller(run_id="w", config=config, problem=problem, db=db)
        with pytest.raises(RunAborted) as caught:
            try:
                await controller.run()
            finally:
                await controller.aclose()
    message = str(caught.value)
    assert "gpt-x" in message and "MY_PROVIDER_KEY" in message and "\n" not in message
    row = db.get_run("w")
    assert row is not None and row.status == "failed"
    db.close()


async def test_a_retry_after_beyond_the_budget_stops_the_run_naming_model_and_url(toy: Problem, tmp_path: Path) -> None:
    from evolve.controller import RunHalted
    from evolve.testing.wire_server import Fail

    async with WireServer(FailureMix()) as server:
        server.script("openai", *[Fail("rate_limit", retry_after_s=3600)] * 8)
        config = _config(toy, tmp_path, {"provider": "local", "model": "slow-model", "base_url": server.openai_base_url})
        with pytest.raises(RunHalted) as caught:
            await _run(config)
    message = str(caught.value)
    assert "slow-model" in message and server.openai_base_url in message and "3600" in message
    assert "\n" not in message
