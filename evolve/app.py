"""The composition root: configuration in, a wired controller out.

This is the one place that reads Hydra configs, opens the database and builds the model layer,
the evaluator and the prompts. Everything below it receives its collaborators.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from evaluators.base import Evaluator
from evaluators.local import LocalEvaluator
from evaluators.ray_pool import RayEvaluator
from evolve.config import EvaluatorConfig, RunConfig, validate_config
from evolve.controller import Controller, Progress, RunSummary
from evolve.database import Database
from evolve.errors import UserError
from evolve.llm.base import LLM
from evolve.llm.factory import build_llm
from evolve.llm.replay import ReplayLLM, prompt_key
from evolve.paths import bundled_dir
from evolve.problem import Problem, load_problem
from evolve.prompts import PromptBuilder

DB_FILE = "evolve.db"


def config_dir() -> Path:
    return bundled_dir("configs")


def compose_config(overrides: Sequence[str]) -> RunConfig:
    """Compose ``configs/`` with Hydra-style overrides and validate the result."""
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
            cfg = compose(config_name="config", overrides=list(overrides))
        raw = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except (HydraException, OmegaConfBaseException) as exc:
        raise UserError(_one_line(exc)) from exc
    assert isinstance(raw, dict)
    return validate_config({str(k): v for k, v in raw.items()})


def apply_overrides(stored: dict[str, Any], overrides: Sequence[str]) -> RunConfig:
    """A stored run config with ``key=value`` overrides (for resume)."""
    bad = [o for o in overrides if "=" not in o or o.startswith(("+", "~"))]
    if bad:
        raise UserError(f"resume takes key=value overrides only, got: {' '.join(bad)}")
    try:
        merged = OmegaConf.merge(OmegaConf.create(stored), OmegaConf.from_dotlist(list(overrides)))
        raw = OmegaConf.to_container(merged, resolve=True)
    except OmegaConfBaseException as exc:
        raise UserError(_one_line(exc)) from exc
    assert isinstance(raw, dict)
    return validate_config({str(k): v for k, v in raw.items()})


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@dataclass(frozen=True)
class RunLocation:
    run_id: str
    run_dir: Path | None
    db_url: str


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


def locate_run(run: str, db_url: str | None = None, runs_dir: str = "runs") -> RunLocation:
    """``run`` is a run folder, a run name under ``runs_dir``, or (with ``db_url``) a run id."""
    if db_url is not None:
        return RunLocation(Path(run).name, None, db_url)
    for candidate in (Path(run), Path(runs_dir) / run):
        if (candidate / DB_FILE).is_file():
            return RunLocation(candidate.resolve().name, candidate, f"sqlite:///{(candidate / DB_FILE).resolve()}")
    raise UserError(f"RUN: no run at '{run}' (looked for {Path(run) / DB_FILE} and {Path(runs_dir) / run / DB_FILE})")


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
    llm = build_replay(config) if config.llm.provider == "replay" else build_llm(
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
        return RayEvaluator(problem, config)
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


def start_run(config: RunConfig) -> tuple[RunLocation, Problem, Database]:
    """Create the run folder and its database row."""
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
    return loc, problem, db


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
    db.set_run_status(loc.run_id, "running", None, config=config.model_dump(mode="json"))
    return config, problem, db
