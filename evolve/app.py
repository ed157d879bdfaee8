"""The composition root: configuration in, a wired controller out.

This is the one place that reads Hydra configs, opens the database and builds the model layer,
the evaluator and the prompts. Everything below it receives its collaborators.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from evaluators.base import Evaluator
from evolve.config import EvaluatorConfig, RunConfig, validate_config
from evolve.controller import Controller, Progress, RunSummary
from evolve.database import Database
from evolve.errors import UserError
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
    one_line,
    override_error,
)
from evolve.problem import Problem, load_problem
from evolve.prompts import PromptBuilder


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


def new_run_location(config: RunConfig, problem: Problem) -> RunLocation:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run_id = config.run_name or f"{problem.name}-{stamp}"
    if not re.fullmatch(r"[A-Za-z0-9._-]+", run_id):
        raise UserError(f"run_name: use letters, digits, '.', '_' and '-' only, got {run_id!r}")
    run_dir = Path(config.runs_dir) / run_id
    if config.database.url is None:
        if (run_dir / DB_FILE).exists():
            raise UserError(f"run_name: {run_dir} already exists; use 'evolve resume {run_dir}'")
        run_dir.mkdir(parents=True, exist_ok=True)
        return RunLocation(run_id, run_dir, f"sqlite:///{(run_dir / DB_FILE).resolve()}")
    return RunLocation(run_id, None, config.database.url)


def open_db(loc: RunLocation, *, echo: bool = False) -> Database:
    return Database.open(loc.db_url, echo=echo)


def build_controller(
    *,
    run_id: str,
    config: RunConfig,
    problem: Problem,
    db: Database,
    on_progress: Callable[[Progress], None] | None = None,
) -> Controller:
    """Wire the model layer, the evaluator and the prompts into a controller."""
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
    """Run the controller and always release the model clients and sandbox workers."""
    try:
        return await controller.run()
    finally:
        await controller.aclose()


def start_run(config: RunConfig, *, overrides: Sequence[str] = ()) -> tuple[RunLocation, Problem, Database]:
    """Create the run folder and its database row (and the start of its history: ``overrides``
    and the problem's spec, which the read-only commands read instead of the problem folder)."""
    problem = load_problem(config.problem)
    loc = new_run_location(config, problem)
    db = open_db(loc, echo=config.database.echo)
    stored = config.model_dump(mode="json")
    stored["problem"] = str(problem.root)
    db.create_run(
        loc.run_id,
        problem=problem.name,
        problem_root=str(problem.root),
        fingerprint=problem.fingerprint,
        config=stored,
        seed=config.seed,
    )
    record_start(db, loc.run_id, problem, overrides)
    return loc, problem, db


def record_start(db: Database, run_id: str, problem: Problem, overrides: Sequence[str]) -> None:
    """The first entry of the run's history: how it was started, and its problem's spec."""
    problem_copy = {"spec": problem.spec.model_dump(mode="json"), "root": str(problem.root)}
    db.add_run_event(run_id, "start", {"overrides": list(overrides), "problem": problem_copy})


def record_resume(db: Database, run_id: str, before: dict[str, Any], after: RunConfig, overrides: Sequence[str]) -> None:
    """A resume in the run's history: its overrides and the config values they changed."""
    changed = config_changes(before, after.model_dump(mode="json"))
    db.add_run_event(run_id, "resume", {"overrides": list(overrides), "changed": changed})


def reopen_run(
    loc: RunLocation, overrides: Sequence[str], *, allow_changed_problem: bool = False
) -> tuple[RunConfig, Problem, Database]:
    """Load a run's stored config (plus overrides) and check its problem is unchanged."""
    db = open_db(loc)
    row = db.get_run(loc.run_id)
    if row is None:
        raise UserError(f"RUN: the database {loc.db_url} has no run '{loc.run_id}'")
    config = apply_overrides(row.config, overrides)
    problem = load_problem(config.problem)
    if problem.fingerprint != row.problem_fingerprint and not allow_changed_problem:
        raise UserError(
            f"{problem.root}: the problem's files changed since the run started "
            "(pass --allow-changed-problem to resume anyway)"
        )
    record_resume(db, loc.run_id, row.config, config, overrides)
    db.set_run_status(loc.run_id, "running", None, config=config.model_dump(mode="json"))
    return config, problem, db
