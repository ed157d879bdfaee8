"""The composition root: configuration in, a wired controller out.

This is the one place that reads Hydra configs, opens the database and builds the model layer,
the evaluator and the prompts. Everything below it receives its collaborators.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from evaluators.base import Evaluator
from evolve.config import EvaluatorConfig, RunConfig, validate_config
from evolve.controller import Controller, Progress, RunSummary
from evolve.database import Database
from evolve.database.lease import RunLease
from evolve.database.models import RunRow
from evolve.database.store import RunExists, describe_url
from evolve.errors import UserError, one_line
from evolve.llm.base import LLM
from evolve.llm.deferred import build_llm_deferred
from evolve.llm.replay import ReplayLLM, prompt_key
from evolve.locate import DB_FILE as DB_FILE
from evolve.locate import RunLocation as RunLocation
from evolve.locate import locate_run as locate_run
from evolve.overrides import (
    GROUPS,
    config_changes,
    config_dir,
    group_file,
    override_error,
)
from evolve.problem import Problem, load_problem
from evolve.prompts import PromptBuilder
from evolve.search import StrategyContext, build_strategy

log = logging.getLogger(__name__)


def compose_config(overrides: Sequence[str]) -> RunConfig:
    """Compose ``configs/`` with Hydra-style overrides and validate the result."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
            cfg = compose(config_name="config", overrides=list(overrides))
        raw = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except (HydraException, OmegaConfBaseException) as exc:
        raise UserError(override_error(exc)) from exc
    assert isinstance(raw, dict)
    return validate_config({str(k): v for k, v in raw.items()})


def apply_overrides(stored: dict[str, Any], overrides: Sequence[str]) -> RunConfig:
    """A stored run config with ``key=value`` overrides (for resume); ``group=option`` (such as
    ``llm=openai``) replaces that group with ``configs/<group>/<option>.yaml``, and the group's
    dotted overrides then apply on top of it."""
    bad = [o for o in overrides if "=" not in o or o.startswith(("+", "~"))]
    if bad:
        raise UserError(f"resume takes key=value overrides only, got: {' '.join(bad)}")
    base = dict(stored)
    dotted = []
    for o in overrides:
        key, _, option = o.partition("=")
        if key in GROUPS:
            base[key] = group_file(key, option)
        else:
            dotted.append(o)
    try:
        merged = OmegaConf.merge(OmegaConf.create(base), OmegaConf.from_dotlist(dotted))
        raw = OmegaConf.to_container(merged, resolve=True)
    except OmegaConfBaseException as exc:
        raise UserError(one_line(exc)) from exc
    assert isinstance(raw, dict)
    return validate_config({str(k): v for k, v in raw.items()})


def run_names(config: RunConfig, problem: Problem) -> Iterator[str]:
    """The name to give a new run: ``run_name`` if set, else ``<problem>-<UTC time>``, then the
    same with ``-2``, ``-3``... for runs started in the same second."""
    if config.run_name is not None:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", config.run_name):
            raise UserError(f"run_name: use letters, digits, '.', '_' and '-' only, got {config.run_name!r}")
        yield config.run_name
        return
    base = f"{problem.name}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
    yield base
    for n in range(2, 1000):
        yield f"{base}-{n}"


def _claim_run_dir(config: RunConfig, run_id: str) -> RunLocation | None:
    """Create the run's folder, atomically: None if a run of that name exists already."""
    runs = Path(config.runs_dir)
    run_dir = runs / run_id
    try:
        runs.mkdir(parents=True, exist_ok=True)
        run_dir.mkdir()
    except FileExistsError:
        if config.run_name is not None:
            hint = f"use 'evolve resume {run_dir}'" if (run_dir / DB_FILE).exists() else "pick another run_name"
            raise UserError(f"run_name: {run_dir} already exists; {hint}") from None
        return None
    except OSError as exc:
        raise UserError(f"runs_dir: cannot create {run_dir}: {exc.strerror or exc}") from exc
    return RunLocation(run_id, run_dir, f"sqlite:///{(run_dir / DB_FILE).resolve()}")


def open_db(loc: RunLocation, *, echo: bool = False) -> Database:
    return Database.open(loc.db_url, echo=echo)


def build_controller(
    *,
    run_id: str,
    config: RunConfig,
    problem: Problem,
    db: Database,
    on_progress: Callable[[Progress], None] | None = None,
    lease: RunLease | None = None,
    started_at: float | None = None,
) -> Controller:
    """Wire the model layer, the evaluator and the prompts into a controller (``lease``: the
    run's lease, renewed by the controller's heartbeat; ``started_at``: the ``time.monotonic()``
    the command began at, from which ``max_wall_time`` counts)."""
    llm = build_replay(config) if config.llm.provider == "replay" else build_llm_deferred(
        config.llm, seed=config.seed, environ=os.environ
    )
    evaluator = build_evaluator(problem, config.evaluator)
    return Controller(
        run_id=run_id,
        problem=problem,
        config=config,
        db=db,
        llm=llm,
        evaluator=evaluator,
        prompts=PromptBuilder(problem),
        on_progress=on_progress,
        lease=lease,
        started_at=started_at,
        strategy=build_strategy(StrategyContext(problem, config.search, config.llm.mode_weights, config.target_score)),
    )


def build_evaluator(problem: Problem, config: EvaluatorConfig) -> Evaluator:
    """The evaluation backend ``config.backend`` names, for ``problem``."""
    if config.backend == "ray":
        from evaluators.ray_pool import RayEvaluator

        return RayEvaluator(problem, config)
    from evaluators.local import LocalEvaluator

    return LocalEvaluator(problem, config)


def build_replay(config: RunConfig) -> LLM:
    """A model that answers with the replies recorded in ``config.llm.replay_run``."""
    assert config.llm.replay_run is not None
    loc = locate_run(config.llm.replay_run, config.llm.replay_db, config.runs_dir)
    db = open_db(loc)
    try:
        if db.get_run(loc.run_id) is None:
            raise UserError(f"llm.replay_run: no run '{loc.run_id}' in {loc.db_url}")
        recorded: dict[str, list[Any]] = {}
        for prompt, reply in db.recorded_replies(loc.run_id):
            recorded.setdefault(prompt_key(prompt), []).append(reply)
    finally:
        db.close()
    return ReplayLLM(recorded, loc.run_id)


def replay_config(loc: RunLocation, overrides: Sequence[str]) -> RunConfig:
    """The config of a recorded run, pointed at its own replies, for a fresh run."""
    db = open_db(loc)
    try:
        row = db.get_run(loc.run_id)
        if row is None:
            raise UserError(f"RUN: no run '{loc.run_id}' in {loc.db_url}")
        probe = db.lease(loc.run_id)  # a live run's recording is not complete: refuse, naming it
        probe.acquire()
        probe.release()
        stored = dict(row.config)
    finally:
        db.close()
    stored["llm"] = {
        **stored.get("llm", {}),
        "provider": "replay",
        "replay_run": str(loc.run_dir) if loc.run_dir is not None else loc.run_id,
        "replay_db": None if loc.run_dir is not None else loc.db_url,
    }
    stored["run_name"] = None
    return apply_overrides(stored, overrides)


async def execute(controller: Controller) -> RunSummary:
    """Run the controller and always release the model clients and sandbox workers.

    SIGTERM (Slurm, ``docker stop``, systemd) is handled like Ctrl-C: the run is cancelled,
    recorded as ``interrupted`` and can be resumed.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def terminate() -> None:
        controller.interrupt_reason = "terminated (SIGTERM)"
        task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, terminate)
        handled = True
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
        handled = False
    try:
        return await controller.run()
    finally:
        if handled:
            loop.remove_signal_handler(signal.SIGTERM)
        await controller.aclose()


@dataclass
class OpenRun:
    """A run this process holds: where it is, its problem, database and lease. ``fresh`` is
    true for a run this process created (it is removed again if its start fails)."""

    loc: RunLocation
    config: RunConfig
    problem: Problem
    db: Database
    lease: RunLease
    fresh: bool
    closed: bool = False  # given up (closed or discarded)
    discarded: bool = False  # a fresh run removed again

    def close(self) -> None:
        """Give the run up: release the lease, close the database."""
        self.closed = True
        try:
            self.lease.release()
        except Exception as exc:  # a full disk or a lost server: the lease then expires
            log.warning("could not release the run's lease: %s", one_line(exc))
        finally:
            self.db.close()

    def discard(self) -> None:
        """Remove a fresh run whose start failed (no initial program evaluated): no ghost."""
        assert self.fresh
        self.closed = self.discarded = True
        try:
            self.db.delete_run(self.loc.run_id)
        finally:
            self.db.close()
        _remove_run_dir(self.loc)


def _remove_run_dir(loc: RunLocation) -> None:
    """Remove a new run's folder: its database files, then the folder if nothing else is in it."""
    if loc.run_dir is None:
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        (loc.run_dir / f"{DB_FILE}{suffix}").unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        loc.run_dir.rmdir()


async def run_held(
    opened: OpenRun,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    started_at: float | None = None,
) -> RunSummary:
    """Run a run this process holds to its end, then give it up. A fresh run whose start failed
    (a missing key, a failing initial program, an interrupt before its initial program was
    checked) is removed again: no ghost run is left behind."""
    controller: Controller | None = None
    keep = True
    try:
        controller = build_controller(
            run_id=opened.loc.run_id, config=opened.config, problem=opened.problem, db=opened.db,
            on_progress=on_progress, lease=opened.lease, started_at=started_at,
        )
        return await execute(controller)
    except BaseException:
        keep = not opened.fresh or (controller is not None and controller.started)
        raise
    finally:
        if keep:
            opened.close()
        else:
            opened.discard()


def start_run(config: RunConfig, *, overrides: Sequence[str] = ()) -> OpenRun:
    """Create the run (its folder and database row, and the start of its history: ``overrides``
    and the problem's spec, which the read-only commands read instead of the problem folder)
    and take its lease."""
    problem = load_problem(config.problem)
    stored = config.model_dump(mode="json")
    stored["problem"] = str(problem.root)
    for run_id in run_names(config, problem):
        if config.database.url is None:
            claimed = _claim_run_dir(config, run_id)
            if claimed is None:
                continue
            loc = claimed
        else:
            loc = RunLocation(run_id, None, config.database.url)
        try:
            db = open_db(loc, echo=config.database.echo)
        except BaseException:
            _remove_run_dir(loc)
            raise
        try:
            db.create_run(
                loc.run_id,
                problem=problem.name,
                problem_root=str(problem.root),
                fingerprint=problem.fingerprint,
                config=stored,
                seed=config.seed,
            )
            record_start(db, loc.run_id, problem, overrides)
            lease = db.lease(loc.run_id)
            lease.acquire()
        except RunExists:
            db.close()
            if config.run_name is not None:
                raise UserError(f"run_name: run '{run_id}' already exists in {loc.db_url}; use 'evolve resume'") from None
            continue
        except BaseException:
            db.close()
            _remove_run_dir(loc)
            raise
        return OpenRun(loc, config, problem, db, lease, fresh=True)
    raise UserError(f"runs_dir: no free run name for {problem.name} in this second")  # pragma: no cover


def record_start(db: Database, run_id: str, problem: Problem, overrides: Sequence[str]) -> None:
    """The first entry of the run's history: how it was started, and its problem's spec."""
    problem_copy = {"spec": problem.spec.model_dump(mode="json"), "root": str(problem.root)}
    db.add_run_event(run_id, "start", {"overrides": list(overrides), "problem": problem_copy})


def record_resume(db: Database, run_id: str, before: dict[str, Any], after: RunConfig, overrides: Sequence[str]) -> None:
    """A resume in the run's history: its overrides and the config values they changed."""
    changed = config_changes(before, after.model_dump(mode="json"))
    db.add_run_event(run_id, "resume", {"overrides": list(overrides), "changed": changed})


def reopen_run(loc: RunLocation, overrides: Sequence[str], *, allow_changed_problem: bool = False) -> OpenRun:
    """Take a run's lease, load its stored config (plus overrides) and check that resuming it
    makes sense: same problem, unchanged files, iterations left to do."""
    db = open_db(loc)
    try:
        row = db.get_run(loc.run_id)
        if row is None:
            raise UserError(f"RUN: the database {describe_url(loc.db_url)} has no run '{loc.run_id}'")
        lease = db.lease(loc.run_id)
        lease.acquire()
    except BaseException:
        db.close()
        raise
    try:
        opened = OpenRun(loc, validate_config(row.config), load_problem_quietly(row), db, lease, fresh=False)
    except BaseException:
        lease.release()
        db.close()
        raise
    try:
        _check_resume(opened, row, overrides, allow_changed_problem)
        config = opened.config
        db.set_run_status(loc.run_id, "running", None, config=config.model_dump(mode="json"))
    except BaseException:
        opened.close()
        raise
    return opened


def load_problem_quietly(row: RunRow) -> Problem:
    """The run's problem as stored; its folder must still exist to resume."""
    try:
        return load_problem(row.config["problem"])
    except UserError as exc:
        raise UserError(f"run '{row.id}': cannot load its problem to resume: {exc}") from exc


def _check_resume(opened: OpenRun, row: RunRow, overrides: Sequence[str], allow_changed_problem: bool) -> None:
    stored, status = row.config, row.status
    name = opened.loc.run_dir or opened.loc.run_id
    for item in overrides:
        key, _, value = item.partition("=")
        if key.strip() == "problem" and value.strip() != str(stored.get("problem")):
            raise UserError(
                f"problem: a run keeps its problem (run '{opened.loc.run_id}' solves {opened.problem.name}); "
                f"start a new run with: evolve run problem={value.strip()}"
            )
        kept = str(stored.get("search", {}).get("strategy", "map_elites"))
        if key.strip() in ("search", "search.strategy") and value.strip() != kept:
            raise UserError(
                f"{key.strip()}: a run keeps its search strategy (run '{opened.loc.run_id}' uses {kept}); "
                f"start a new run with: evolve run problem={opened.problem.name} search={value.strip()}"
            )
    overrides = [o for o in overrides if o.partition("=")[0].strip() != "search"]  # the same group: a no-op
    config = apply_overrides(stored, overrides)
    if opened.problem.fingerprint != row.problem_fingerprint and not allow_changed_problem:
        raise UserError(
            f"{opened.problem.root}: the problem's files changed since the run started "
            "(pass --allow-changed-problem to resume anyway)"
        )
    done = opened.db.last_iteration(opened.loc.run_id)
    if done is not None and config.max_iterations < done:
        raise UserError(
            f"max_iterations: {config.max_iterations} is below the {done} iterations run '{opened.loc.run_id}' "
            f"has done; to go on: evolve resume {name} max_iterations={2 * done}"
        )
    if status == "finished" and done is not None and config.max_iterations <= done:
        raise UserError(
            f"run '{opened.loc.run_id}' is finished ({done} of {config.max_iterations} iterations); "
            f"extend it with: evolve resume {name} max_iterations={max(2 * done, done + 100)}"
        )
    record_resume(opened.db, opened.loc.run_id, stored, config, overrides)
    opened.config = config


def compare_replay(source: RunLocation, replayed: RunLocation) -> str:
    """One line: whether a replay made the same programs as the run it replayed."""
    src = open_db(source)
    new = open_db(replayed)
    try:
        theirs = {p.iteration: (p.status.value, p.code_hash) for p in src.programs(source.run_id)}
        ours = {p.iteration: (p.status.value, p.code_hash) for p in new.programs(replayed.run_id)}
    finally:
        src.close()
        new.close()
    recorded = max(theirs, default=0)
    differ = sorted(i for i in ours if i in theirs and ours[i] != theirs[i])
    if differ:
        return f"replay differs from {source.run_id} from iteration {differ[0]} on"
    if len(ours) < len(theirs):
        return f"replay matches {source.run_id} for the {len(ours) - 1} iterations it ran (of {recorded} recorded)"
    return f"replay matches the recording: the same {recorded} iterations as {source.run_id}"
