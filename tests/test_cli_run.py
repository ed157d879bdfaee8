"""``evolve run``/``resume``/``check`` as users know Hydra: --cfg job, -m, --version, unknown keys
and group options named, the problem as a bare word, switching model on resume, the preflight."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from evolve.app import compose_config
from evolve.overrides import concurrency_note
from tests.cli_helpers import evolve


@pytest.fixture
def toy_cwd(tmp_path: Path) -> Path:
    assert evolve("init", "p", cwd=tmp_path).returncode == 0
    return tmp_path


@pytest.fixture
def wire_url() -> Iterator[str]:
    """A local OpenAI-compatible server (answers at once with an edit of the parent)."""
    proc = subprocess.Popen([sys.executable, "-m", "evolve.testing.wire_server", "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline().split()[-1])
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    proc.wait()


def test_cfg_job_prints_the_resolved_config(toy_cwd: Path) -> None:
    r = evolve("run", "problem=p", "search.islands=3", "--cfg", "job", cwd=toy_cwd)
    assert r.returncode == 0, r.stderr
    config = yaml.safe_load(r.stdout)
    assert config["problem"] == "p" and config["search"]["islands"] == 3 and config["llm"]["provider"] == "offline"
    assert not (toy_cwd / "runs").exists()  # nothing ran


def test_multirun_sweeps_the_comma_separated_values(toy_cwd: Path) -> None:
    r = evolve("run", "-m", "problem=p", "seed=0,1", "max_iterations=2", "run_name=s", "progress=false", cwd=toy_cwd)
    assert r.returncode == 0, r.stderr
    runs = json.loads(evolve("status", "--json", cwd=toy_cwd).stdout)
    assert sorted(r["run"] for r in runs) == ["s-0", "s-1"]
    seeds = {name: json.loads(evolve("status", name, "--json", cwd=toy_cwd).stdout)["seed"] for name in ("s-0", "s-1")}
    assert seeds == {"s-0": 0, "s-1": 1}


def test_version(tmp_path: Path) -> None:
    r = evolve("--version", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "evolve 0.1.0"


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["problem=p", "search.islandz=3"], ["unknown key 'search.islandz'", "closest valid: search.islands"]),
        (["problem=p", "+search.migration_intervall=3"], ["unknown key", "search.migration_interval"]),
        (["problem=p", "llm=gpt"], ["llm=gpt", "anthropic, ensemble, local, offline, openai"]),
        (["problem=p", "evaluator=docker"], ["evaluator=docker", "local, local_cold, local_strict, ray"]),
        (["p", "q"], ["problem=p"]),
    ],
)
def test_bad_overrides_name_what_is_valid_in_one_line(toy_cwd: Path, args: list[str], needles: list[str]) -> None:
    r = evolve("run", *args, cwd=toy_cwd)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    for needle in needles:
        assert needle in r.stderr, r.stderr


def test_the_problem_as_a_bare_first_word(toy_cwd: Path) -> None:
    r = evolve("run", "p", "max_iterations=2", "run_name=bare", "progress=false", cwd=toy_cwd)
    assert r.returncode == 0, r.stderr
    assert json.loads(evolve("status", "bare", "--json", cwd=toy_cwd).stdout)["problem"] == "p"


def test_resume_switches_model_and_keeps_it_in_the_history(toy_cwd: Path, wire_url: str) -> None:
    assert evolve("run", "problem=p", "max_iterations=3", "run_name=h", "progress=false", cwd=toy_cwd).returncode == 0
    r = evolve("resume", "h", "max_iterations=6", "llm=local", f"llm.base_url={wire_url}", "llm.model=wired",
               cwd=toy_cwd)
    assert r.returncode == 0, r.stderr
    status = json.loads(evolve("status", "h", "--json", cwd=toy_cwd).stdout)
    assert status["iterations"] == 6
    assert {m["model"] for m in status["models"]} == {"offline-mutator", "wired"}
    resumed = status["history"][1]
    assert resumed["kind"] == "resume" and "llm=local" in resumed["overrides"]
    assert resumed["changed"]["llm.provider"] == ["offline", "local"]
    assert resumed["changed"]["max_iterations"] == [3, 6]
    plain = evolve("status", "h", cwd=toy_cwd).stdout
    assert "resume  max_iterations=6 llm=local" in plain and "llm.provider: offline -> local" in plain


def test_resume_rejects_an_unknown_group_option(toy_cwd: Path) -> None:
    assert evolve("run", "problem=p", "max_iterations=1", "run_name=u", "progress=false", cwd=toy_cwd).returncode == 0
    r = evolve("resume", "u", "llm=gpt", cwd=toy_cwd)
    assert r.returncode == 2 and "llm=gpt" in r.stderr and "openai" in r.stderr


def test_in_flight_above_the_model_concurrency_is_named() -> None:
    base = ["problem=circle_packing", "llm=local", "llm.base_url=http://127.0.0.1:1/v1", "search.in_flight=8"]
    note = concurrency_note(compose_config([*base, "llm.max_concurrency=4"]))
    assert note is not None and "search.in_flight=8" in note and "llm.max_concurrency allows 4" in note
    assert concurrency_note(compose_config([*base, "llm.max_concurrency=8"])) is None
    assert concurrency_note(compose_config(["problem=circle_packing", "search.in_flight=8"])) is None  # offline


def test_run_prints_the_concurrency_note(toy_cwd: Path, wire_url: str) -> None:
    r = evolve("run", "problem=p", "max_iterations=1", "run_name=n", "progress=false", "llm=local",
               f"llm.base_url={wire_url}", "llm.model=m", "search.in_flight=6", "llm.max_concurrency=2", cwd=toy_cwd)
    assert r.returncode == 0, r.stderr
    assert "evolve: note: search.in_flight=6, but llm.max_concurrency allows 2" in r.stderr


def test_check_passes_for_a_sound_problem_and_a_reachable_model(toy_cwd: Path, wire_url: str) -> None:
    r = evolve("check", "problem=p", "llm=local", f"llm.base_url={wire_url}", "llm.model=m",
               "llm.context_tokens=100000", "llm.price_in_per_mtok=1", "llm.price_out_per_mtok=4",
               "max_iterations=100", cwd=toy_cwd)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "the same twice" in r.stdout and "model m at" in r.stdout and "answers" in r.stdout
    assert "fit its context of 100,000" in r.stdout
    assert "per iteration" in r.stdout and "for 100 iterations" in r.stdout


def test_check_fails_one_line_per_problem(toy_cwd: Path, wire_url: str) -> None:
    scorer = toy_cwd / "p" / "scorer.py"
    scorer.write_text(scorer.read_text().replace(
        'return {"energy": sum(1.0 / d for d in dists)',
        'import random\n    return {"energy": random.random() + sum(1.0 / d for d in dists)'))
    r = evolve("check", "problem=p", "llm=local", "llm.base_url=http://127.0.0.1:9/v1", "llm.model=nowhere",
               "llm.context_tokens=500", "llm.api_key_env=EVOLVE_TEST_UNSET_KEY", cwd=toy_cwd)
    assert r.returncode == 1
    failures = [ln for ln in r.stderr.splitlines() if ln.startswith("evolve: check failed:")]
    assert len(failures) == 3, r.stderr
    assert "does not score the same twice" in failures[0]
    assert "EVOLVE_TEST_UNSET_KEY" in failures[1]
    assert "exceed its context of 500 tokens" in failures[2]


def test_check_a_missing_problem(tmp_path: Path) -> None:
    r = evolve("check", "problem=nowhere", cwd=tmp_path)
    assert r.returncode == 1 and "problem=nowhere" in r.stderr
