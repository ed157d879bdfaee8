"""The Python API: evolve.run (also inside a running event loop), evolve.arun, evolve.open_run, a
scorer given as a Python function, and the deferred model's build."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import evolve
from evolve.errors import UserError
from evolve.llm.config import LLMConfig
from evolve.llm.deferred import DeferredLLM, build_llm_deferred
from evolve.records import LLMRequest, Message, Status
from evolve.scaffold import scaffold_problem
from evolve.testing.wire_server import WireServer


@pytest.fixture
def toy_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    scaffold_problem(tmp_path / "p")
    return tmp_path / "p"


def doubled_energy(output: Any) -> dict[str, float]:
    """A scorer from an importable module: twice the scaffold's energy (and the min distance,
    a feature of the scaffold's archive)."""
    pts = [tuple(p) for p in output]
    dists = [math.dist(a, b) for i, a in enumerate(pts) for b in pts[i + 1:]]
    return {"energy": 2 * sum(1 / d for d in dists), "min_distance": min(dists)}


def test_run_then_open_run(toy_dir: Path) -> None:
    seen: list[int] = []
    summary = evolve.run(toy_dir, ["max_iterations=6", "run_name=a", "evaluator.concurrency=2"],
                         on_progress=lambda p: seen.append(p.applied))
    assert isinstance(summary, evolve.RunSummary)
    assert summary.status == "finished" and summary.iterations == 6 and max(seen) == 6
    with evolve.open_run("runs/a") as view:
        programs = view.programs()
        assert [p.iteration for p in programs] == list(range(7))
        best = view.best
        assert best is not None and summary.best is not None and best.id == summary.best.id
        chain = view.lineage()
        assert chain[0].iteration == 0 and chain[-1].id == best.id
        assert [p.id for p in view.lineage(programs[3].id)][-1] == programs[3].id
        calls = view.calls()
        assert len(calls) == 6 and calls[0]["model"] == "offline-mutator" and calls[0]["prompt"]
        assert view.status().iterations == 6
        try:
            import pandas  # noqa: F401
        except ImportError:
            with pytest.raises(UserError, match="pandas"):
                view.to_dataframe()
        else:
            frame = view.to_dataframe()
            assert len(frame) == 7 and "metric.energy" in frame.columns


def test_run_works_inside_a_running_event_loop(toy_dir: Path) -> None:
    async def notebook_cell() -> evolve.RunSummary:
        return evolve.run(toy_dir, ["max_iterations=2", "run_name=nb"])  # as typed into Jupyter

    summary = asyncio.run(notebook_cell())
    assert summary.status == "finished" and summary.iterations == 2


async def test_arun_on_the_callers_loop(toy_dir: Path) -> None:
    summary = await evolve.arun(toy_dir, ["max_iterations=2", "run_name=aw"])
    assert summary.status == "finished"


def test_open_run_by_database_url(toy_dir: Path) -> None:
    evolve.run(toy_dir, ["max_iterations=1", "run_name=u"])
    with evolve.open_run(f"sqlite:///{Path('runs/u/evolve.db').resolve()}") as view:
        assert view.run_id == "u" and len(view.programs()) == 2


def test_a_scorer_from_an_importable_module(toy_dir: Path) -> None:
    plain = evolve.run(toy_dir, ["max_iterations=1", "run_name=plain"])
    doubled = evolve.run(toy_dir, ["max_iterations=1", "run_name=doubled"], scorer=doubled_energy)
    assert plain.initial_score is not None and doubled.initial_score is not None
    assert doubled.initial_score == pytest.approx(2 * plain.initial_score, rel=1e-12)


def test_a_scorer_defined_in_a_script(toy_dir: Path) -> None:
    script = toy_dir.parent / "notebook.py"
    script.write_text(
        "import math\nimport evolve\n\n"
        "def halved(output):\n"
        "    pts = [tuple(p) for p in output]\n"
        "    dists = [math.dist(a, b) for i, a in enumerate(pts) for b in pts[i + 1:]]\n"
        "    return {'energy': sum(1 / d for d in dists) / 2, 'min_distance': min(dists)}\n\n"
        "s = evolve.run('p', ['max_iterations=1', 'run_name=script'], scorer=halved)\n"
        "print(s.initial_score)\n"
    )
    r = subprocess.run([sys.executable, str(script)], cwd=toy_dir.parent, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    plain = evolve.run(toy_dir, ["max_iterations=0", "run_name=plain0"])
    assert plain.initial_score is not None
    assert float(r.stdout.strip().splitlines()[-1]) == pytest.approx(plain.initial_score / 2, rel=1e-12)


def test_a_lambda_scorer_is_refused(toy_dir: Path) -> None:
    with pytest.raises(UserError, match="top level"):
        evolve.run(toy_dir, ["max_iterations=1"], scorer=lambda output: {"energy": 1.0})


def test_deferred_model_checks_the_key_now_and_builds_on_the_first_request() -> None:
    config = LLMConfig(provider="openai", model="m", base_url="http://127.0.0.1:9/v1", api_key_env="EVOLVE_TEST_KEY")
    with pytest.raises(UserError, match="EVOLVE_TEST_KEY"):
        build_llm_deferred(config, seed=0, environ={})

    async def go() -> None:
        async with WireServer() as server:
            local = LLMConfig(provider="local", model="m", base_url=server.openai_base_url)
            llm = build_llm_deferred(local, seed=0, environ={})
            assert isinstance(llm, DeferredLLM) and llm.name == "m"
            request = LLMRequest(messages=(Message(role="user", content="```python\nx = 1.5\n```"),))
            replies = await asyncio.gather(*(llm.complete(request) for _ in range(3)))
            await llm.aclose()
            assert len(server.requests) == 3 and all(r.model for r in replies)

    asyncio.run(go())


def test_status_enum_is_exported() -> None:
    assert evolve.Status.EVALUATED is Status.EVALUATED and "run" in evolve.__all__ and "open_run" in evolve.__all__
