"""The composition root: configuration in, a wired controller out.

This is the one place that reads Hydra configs, opens the database and builds the model layer,
the evaluator and the prompts. Everything below it receives its collaborators.
"""

from __future__ import annotations

import difflib
import itertools
import os
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from evaluators.base import Evaluator
from evolve.config import EvaluatorConfig, RunConfig, config_keys, validate_config
from evolve.controller import Controller, Progress, RunSummary
from evolve.database import Database
from evolve.errors import UserError
from evolve.llm.base import LLM
from evolve.llm.deferred import build_llm_deferred
from evolve.llm.replay import ReplayLLM, prompt_key
from evolve.locate import DB_FILE as DB_FILE
from evolve.locate import RunLocation as RunLocation
from evolve.locate import locate_run as locate_run
from evolve.paths import bundled_dir
from evolve.problem import Problem, load_problem
from evolve.prompts import PromptBuilder


def config_dir() -> Path:
    return bundled_dir("configs")


#: The Hydra config groups: ``llm=openai`` picks ``configs/llm/openai.yaml``.
GROUPS = ("llm", "evaluator", "database", "search")


def compose_config(overrides: Sequence[str]) -> RunConfig:
    """Compose ``configs/`` with Hydra-style overrides and validate the result."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
            cfg = compose(config_name="config", overrides=list(overrides))
        raw = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except (HydraException, OmegaConfBaseException) as exc:
        raise UserError(_override_error(exc)) from exc
    assert isinstance(raw, dict)
    return validate_config({str(k): v for k, v in raw.items()})


def group_options(group: str) -> list[str]:
    """The options of a config group: the names of ``configs/<group>/*.yaml``."""
    return sorted(f.stem for f in (config_dir() / group).glob("*.yaml"))


def _override_error(exc: BaseException) -> str:
    """Hydra's error as one line that names the override and what would be valid."""
    text = str(exc)
    missing = re.search(r"Could not find '([A-Za-z_]+)/([^']+)'", text)
    if missing and missing.group(1) in GROUPS:
        group, option = missing.groups()
        return f"{group}={option}: no such option; {group} is one of: {', '.join(group_options(group))}"
    bad = re.search(r"Could not override '([^']+)'", text)
    if bad:
        return unknown_key_message(bad.group(1))
    return _one_line(exc)


def unknown_key_message(key: str) -> str:
    """``unknown key 'x'`` with the closest valid keys (or group names)."""
    if key in config_keys():  # valid, but the chosen group file does not list it
        return f"'{key}' is not set by the config files chosen; add it with +{key}=VALUE"
    valid = list(dict.fromkeys([*config_keys(), *GROUPS]))
    close = difflib.get_close_matches(key, valid, n=3, cutoff=0.6)
    if not close and "." in key:  # a typo in the leaf: compare with that section's keys
        head = key.rsplit(".", 1)[0]
        close = difflib.get_close_matches(key, [k for k in valid if k.startswith(head + ".")], n=3, cutoff=0.4)
    hint = f"; closest valid: {', '.join(close)}" if close else ""
    return f"unknown key '{key}'{hint}"


def problem_shorthand(args: Sequence[str]) -> list[str]:
    """``evolve run circle_packing ...`` means ``problem=circle_packing``: a first argument that is
    no override names the problem (when no ``problem=`` is given)."""
    bare = [a for a in args if "=" not in a and not a.startswith(("+", "~"))]
    if not bare:
        return list(args)
    if len(bare) > 1 or bare[0] != args[0] or any(a.startswith("problem=") for a in args):
        raise UserError(f"'{bare[0]}' is not an override (key=value); to name the problem: problem={bare[0]}")
    return [f"problem={args[0]}", *args[1:]]


def sweep(args: Sequence[str]) -> list[list[str]]:
    """The jobs of a multirun: every combination of the comma-separated values (``seed=0,1,2``).

    A value with brackets, braces or quotes is one value (a list or a mapping), as in Hydra. A
    given ``run_name`` gets the job's number appended, so the runs do not collide."""
    choices: list[list[str]] = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and "," in value and not any(c in value for c in "[]{}()'\""):
            choices.append([f"{key}={v}" for v in value.split(",")])
        else:
            choices.append([arg])
    jobs = [list(combo) for combo in itertools.product(*choices)]
    if len(jobs) > 1:
        for k, job in enumerate(jobs):
            job[:] = [f"{a}-{k}" if a.startswith("run_name=") else a for a in job]
    return jobs


def config_yaml(config: RunConfig) -> str:
    """The resolved config as YAML (``evolve run --cfg job``)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def concurrency_note(config: RunConfig) -> str | None:
    """Why fewer model calls than ``search.in_flight`` may run at once, when that is so: each
    endpoint's ``max_concurrency`` bounds the calls in flight to it."""
    specs = config.llm.resolved_models()
    if not specs:
        return None
    in_flight = config.search.in_flight or 2 * config.evaluator.resolved_concurrency()
    per_endpoint: dict[tuple[str, str], int] = {}
    for spec in specs:
        key = (spec.provider, spec.resolved_base_url())
        per_endpoint[key] = min(per_endpoint.get(key, spec.max_concurrency), spec.max_concurrency)
    allowed = sum(per_endpoint.values())
    if allowed >= in_flight:
        return None
    knob = "llm.max_concurrency" if config.llm.provider != "ensemble" else "the models' max_concurrency"
    return (f"search.in_flight={in_flight}, but {knob} allows {allowed} model calls at once: "
            f"{allowed} bind (set {knob}={in_flight} for {in_flight})")


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
            base[key] = _group_file(key, option)
        else:
            dotted.append(o)
    try:
        merged = OmegaConf.merge(OmegaConf.create(base), OmegaConf.from_dotlist(dotted))
        raw = OmegaConf.to_container(merged, resolve=True)
    except OmegaConfBaseException as exc:
        raise UserError(_one_line(exc)) from exc
    assert isinstance(raw, dict)
    return validate_config({str(k): v for k, v in raw.items()})


def _group_file(group: str, option: str) -> dict[str, Any]:
    path = config_dir() / group / f"{option}.yaml"
    if not path.is_file():
        raise UserError(f"{group}={option}: no such option; {group} is one of: {', '.join(group_options(group))}")
    loaded = yaml.safe_load(path.read_text()) or {}
    assert isinstance(loaded, dict)
    return {k: v for k, v in loaded.items() if k != "defaults"}


def config_changes(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> dict[str, list[Any]]:
    """The leaves that differ between two config trees: ``{"llm.model": [old, new]}``."""
    out: dict[str, list[Any]] = {}
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out |= config_changes(a, b, f"{prefix}{key}.")
        elif a != b:
            out[f"{prefix}{key}"] = [a, b]
    return out


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


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
