"""The Ray evaluator: the local sandbox on the nodes of a Ray cluster started on this machine.

A helper process starts a Ray instance on loopback with a secret in its environment, which
every Ray worker inherits; the tests connect to it by address. One test lets the evaluator start
(and stop) Ray itself, the default configuration.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from evaluators.ray_pool import WORKER_DIR_PREFIX, RayEvaluator, problem_files, sweep_dead_workers
from evaluators.workers import ScorerLoadError
from evolve.app import build_controller, start_run
from evolve.config import EvaluatorConfig, RunConfig
from evolve.errors import UserError
from evolve.problem import Problem, load_problem
from evolve.records import Status
from tests.evaluators.processes import marked_pids, spawner, wait_dead, wait_marked

# Ray starts local clusters with token authentication, and a driver that connects by address
# sends the token only when told to, as a user of such a cluster does: before Ray is imported,
# which reads the setting once.
os.environ.setdefault("RAY_AUTH_MODE", "token")
pytest.importorskip("ray")  # installed with the dev extra; CI always has it

TOY = Path(__file__).parent / "evaluators" / "fixtures" / "toy"
SECRET = "sk-cluster-secret-" + uuid.uuid4().hex[:8]

_HEAD = textwrap.dedent(
    """
    import sys, time, ray
    info = ray.init(num_cpus=3, include_dashboard=False, object_store_memory=100 * 1024 * 1024,
                    log_to_driver=False, configure_logging=False)
    print(info.address_info["gcs_address"], flush=True)
    sys.stdin.read()  # until the test closes stdin
    ray.shutdown()
    """
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """The address of a Ray instance on this machine whose workers carry ``SECRET`` in their env.

    """
    env = {**os.environ, "EVOLVE_CLUSTER_SECRET": SECRET, "RAY_USAGE_STATS_ENABLED": "0"}
    head = subprocess.Popen(
        [sys.executable, "-c", _HEAD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert head.stdout is not None
        address = head.stdout.readline().strip()
        assert address.rpartition(":")[2].isdigit(), address  # this machine's address (Ray's choice)
        yield address
    finally:
        assert head.stdin is not None
        head.stdin.close()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()


@pytest.fixture
async def on_cluster(cluster: str) -> AsyncIterator[RayEvaluator]:
    ev = RayEvaluator(load_problem(TOY), _config(cluster, concurrency=2))
    yield ev
    await ev.aclose()


def _config(address: str | None, **over: Any) -> EvaluatorConfig:
    return EvaluatorConfig.model_validate({"backend": "ray", "ray": {"address": address}, **over})


async def test_candidates_on_ray_are_scored_and_see_none_of_the_workers_env(on_cluster: RayEvaluator) -> None:
    code = (
        "import os\n"
        "def run():\n"
        "    print(sorted(os.environ))\n"
        "    return {'x': 2.5 + float('EVOLVE_CLUSTER_SECRET' in os.environ)}\n"
    )
    results = await asyncio.gather(*(on_cluster.evaluate(code) for _ in range(4)))
    for result in results:
        assert result.status is Status.EVALUATED, result.error
        assert result.metrics == {"score": 2.5}  # the variable was not there
        assert SECRET not in result.stdout_tail and "EVOLVE_CLUSTER_SECRET" not in result.stdout_tail


async def test_a_candidate_on_ray_is_killed_with_its_tree_at_its_limit(on_cluster: RayEvaluator) -> None:
    marker = f"evtest-{uuid.uuid4().hex[:6]}"
    result = await on_cluster.evaluate(spawner(marker))  # the toy problem's limit: 3 s
    assert result.status is Status.TIMEOUT
    assert await wait_marked(marker, count=0, within_s=2.0), marked_pids(marker)


async def test_cancelling_a_call_kills_the_candidate_on_its_node(on_cluster: RayEvaluator) -> None:
    marker = f"evtest-{uuid.uuid4().hex[:6]}"
    task = asyncio.create_task(on_cluster.evaluate(spawner(marker)))
    assert await wait_marked(marker, count=2, within_s=10.0)  # the candidate and its child
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_marked(marker, count=0, within_s=2.0), marked_pids(marker)
    after = await on_cluster.evaluate("def run():\n    return {'x': 4}\n")
    assert after.metrics == {"score": 4.0}


async def test_a_worker_that_dies_is_replaced_and_the_candidate_run_again(on_cluster: RayEvaluator) -> None:
    marker = f"evtest-{uuid.uuid4().hex[:6]}"
    code = (
        "import ctypes, time\n"
        "def run():\n"
        f"    ctypes.CDLL(None).prctl(15, {marker.encode()!r})\n"
        "    time.sleep(1.5)\n"
        "    return {'x': 7}\n"
    )
    task = asyncio.create_task(on_cluster.evaluate(code))
    assert await wait_marked(marker, count=1, within_s=10.0)
    worker = _ray_worker_above(marked_pids(marker)[0])
    os.kill(worker, signal.SIGKILL)  # as when its node is lost
    result = await task  # run again on a fresh worker
    assert result.status is Status.EVALUATED and result.metrics == {"score": 7.0}
    assert await wait_dead(worker)
    assert await wait_marked(marker, count=0, within_s=2.0), marked_pids(marker)


def _ray_worker_above(pid: int) -> int:
    """The Ray worker process (an ``EvaluationWorker`` actor) that ``pid`` descends from."""
    while pid > 1:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            if fh.read().startswith(b"ray::EvaluationWorker"):
                return pid
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            pid = int(fh.read().rsplit(")", 1)[1].split()[1])
    raise AssertionError("the candidate does not descend from a Ray worker")


async def test_a_problem_error_on_a_node_arrives_as_it_does_locally(cluster: str, tmp_path: Path) -> None:
    root = tmp_path / "toy"
    shutil.copytree(TOY, root)
    (root / "scorer.py").write_text("raise ImportError('no module named helpers')\n")
    ev = RayEvaluator(load_problem(root), _config(cluster, concurrency=1))
    try:
        with pytest.raises(ScorerLoadError) as caught:
            await ev.evaluate("def run():\n    return {'x': 1}\n")
    finally:
        await ev.aclose()
    assert "no module named helpers" in str(caught.value) and "ray::" not in str(caught.value)


async def test_a_run_on_ray_makes_the_same_programs_as_a_local_run(toy: Problem, tmp_path: Path) -> None:
    """Ray started (and stopped) by the evaluator itself: the default `evaluator=ray`."""

    async def run(name: str, evaluator: dict[str, Any]) -> list[tuple[int, str, float | None]]:
        config = RunConfig.model_validate({
            "problem": str(toy.root), "runs_dir": str(tmp_path / "runs"), "run_name": name,
            "max_iterations": 16, "progress": False, "seed": 3, "evaluator": {"concurrency": 2, **evaluator},
        })
        opened = start_run(config)
        problem, db = opened.problem, opened.db
        controller = build_controller(run_id=name, config=config, problem=problem, db=db)
        try:
            summary = await controller.run()
        finally:
            await controller.aclose()
        assert summary.status == "finished"
        programs = [(p.iteration, p.status.value, p.score("energy")) for p in db.programs(name)]
        db.close()
        return programs

    local = await run("local", {})
    on_ray = await run("ray", {"backend": "ray"})
    assert len(local) == 17 and on_ray == local


async def test_a_ray_started_here_must_fit_the_slots(toy: Problem) -> None:
    ev = RayEvaluator(toy, _config(None, concurrency=64))
    try:
        with pytest.raises(UserError, match=r"evaluator.concurrency: 64 slots .* need 64 CPUs"):
            await ev.evaluate("def run():\n    return {}\n")
    finally:
        await ev.aclose()


def test_the_problem_travels_without_caches_or_hidden_files(tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / "data").mkdir(parents=True)
    (root / "__pycache__").mkdir()
    (root / ".git").mkdir()
    (root / "problem.yaml").write_text("name: p\n")
    (root / "data" / "table.csv").write_bytes(b"1,2\n")
    (root / "__pycache__" / "scorer.cpython-311.pyc").write_bytes(b"\0")
    (root / ".git" / "HEAD").write_text("ref\n")
    assert problem_files(root) == {"data/table.csv": b"1,2\n", "problem.yaml": b"name: p\n"}


def test_the_problem_copies_of_dead_workers_are_swept(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, alive = int(gone.stdout), os.getpid()
    stale = tmp_path / f"{WORKER_DIR_PREFIX}{dead}-abc"
    live = tmp_path / f"{WORKER_DIR_PREFIX}{alive}-def"
    other = tmp_path / f"{WORKER_DIR_PREFIX}notapid-x"
    for path in (stale, live, other):
        (path / "problem").mkdir(parents=True)
    assert sweep_dead_workers(tmp_path) == [stale]
    assert not stale.exists() and live.exists() and other.exists()
