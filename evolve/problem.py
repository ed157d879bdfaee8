"""Problem definitions: ``problems/<name>/problem.yaml``, validated at load.

A problem folder holds a ``problem.yaml``, the initial program and a trusted scorer. Every error
names the file and the field, so a user can fix a typo without reading a traceback.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evolve.errors import UserError
from evolve.paths import bundled_dir

#: Feature dimensions computed from the code rather than from a metric.
BUILTIN_FEATURES = frozenset({"code_length", "line_count"})


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MetricsSpec(_Spec):
    primary: str = Field(description="the metric that is the score")
    direction: Literal["maximize", "minimize"]
    visible: tuple[str, ...] | None = Field(
        default=None, description="metrics the LLM may see; None means all"
    )
    descriptions: dict[str, str] = Field(default_factory=dict)
    objectives: dict[str, Literal["maximize", "minimize"]] = Field(
        default_factory=dict,
        description="search=pareto: metrics (or code_length, line_count) traded off against each other",
    )


class FeatureSpec(_Spec):
    """One MAP-Elites dimension: a builtin (code_length, line_count) or a metric's name."""

    name: str
    min: float
    max: float
    bins: int = Field(ge=1, le=1000)

    @model_validator(mode="after")
    def _range(self) -> FeatureSpec:
        if not self.max > self.min:
            raise ValueError(f"max ({self.max}) must be greater than min ({self.min})")
        return self


class Limits(_Spec):
    timeout_s: float = Field(default=30.0, gt=0)
    memory_mb: int = Field(default=2048, ge=64)
    cpu_time_s: float | None = Field(
        default=None,
        gt=0,
        description="defaults to timeout_s; all of a candidate's processes together where a "
        "CPU cgroup per slot can be made (root), else per process",
    )
    cpu_cores: float = Field(
        default=1.0,
        ge=0.01,
        le=1024,
        description="cores a candidate's processes may use at once, together (a CPU cgroup's "
        "quota; applied where root can make one)",
    )
    max_processes: int = Field(default=64, ge=1)
    max_file_mb: int = Field(default=64, ge=1)
    max_disk_mb: int = Field(
        default=256,
        ge=1,
        le=64 * 1024,
        description="what a candidate may keep in its working directory, /tmp and /dev/shm "
        "together (a tmpfs: it takes memory as it fills)",
    )
    max_files: int = Field(
        default=10_000, ge=1, le=10_000_000, description="files and folders it may keep there"
    )
    max_output_kb: int = Field(default=64, ge=1, description="captured stdout/stderr kept")
    max_report_kb: int = Field(
        default=1024, ge=1, le=64 * 1024, description="largest JSON value a program may return"
    )


class BestKnown(_Spec):
    value: float
    source: str
    previous_record: float | None = None
    previous_source: str | None = None
    note: str | None = Field(
        default=None, description="a caveat the value needs (how it was obtained, what it compares with)"
    )
    reproduced: str | None = Field(
        default=None, description="what the published constructions score under this scorer"
    )


class StageSpec(_Spec):
    """One step of an evaluation cascade: a quick instance before the full one, say."""

    name: str
    entry_kwargs: dict[str, object] = Field(
        default_factory=dict, description="merged over the problem's entry_kwargs"
    )
    threshold: float | None = Field(
        default=None,
        description="pass when the metric is at least (maximize) or at most (minimize) this",
    )
    metric: str | None = Field(default=None, description="metric the threshold tests; default primary")
    timeout_s: float | None = Field(default=None, gt=0, description="default: limits.timeout_s")


class ProblemSpec(_Spec):
    """The contents of ``problem.yaml``."""

    name: str
    description: str
    initial_program: str = "initial.py"
    entry: str = Field(default="run", description="function the sandbox calls")
    entry_kwargs: dict[str, object] = Field(default_factory=dict)
    scorer: str = Field(default="scorer.py:score", description="file.py:function in the folder")
    interactive: bool = Field(
        default=False,
        description="the scorer is an environment that plays an episode with the candidate "
        "over a channel (evolve.interactive); the candidate's return value is ignored",
    )
    metrics: MetricsSpec
    features: tuple[FeatureSpec, ...] = ()
    limits: Limits = Limits()
    best_known: BestKnown | None = None
    tolerance: str | None = Field(
        default=None, description="the tolerance the scorer's checks allow, in words"
    )
    imports: tuple[str, ...] = Field(default=(), description="modules to pre-import (warm pool)")
    env: tuple[str, ...] = Field(default=(), description="parent env vars passed to candidates")
    stages: tuple[StageSpec, ...] = Field(
        default=(), description="evaluation cascade; empty means one run with entry_kwargs"
    )

    @field_validator("scorer")
    @classmethod
    def _scorer_form(cls, v: str) -> str:
        file, sep, func = v.partition(":")
        if not sep or not file.endswith(".py") or not func.isidentifier():
            raise ValueError("must look like 'file.py:function'")
        return v

    @field_validator("entry")
    @classmethod
    def _entry_form(cls, v: str) -> str:
        if not v.isidentifier():
            raise ValueError("must be a Python function name")
        return v

    @field_validator("stages")
    @classmethod
    def _stage_names_unique(cls, v: tuple[StageSpec, ...]) -> tuple[StageSpec, ...]:
        names = [stage.name for stage in v]
        if len(set(names)) != len(names):
            raise ValueError("stage names must be unique")
        return v

    @model_validator(mode="after")
    def _features_known(self) -> ProblemSpec:
        visible = self.metrics.visible
        if visible is not None and self.metrics.primary not in visible:
            raise ValueError(f"metrics.visible must include the primary metric {self.metrics.primary!r}")
        return self


class Problem(BaseModel):
    """A loaded problem: its spec plus where it lives and what its files say."""

    model_config = ConfigDict(frozen=True)

    spec: ProblemSpec
    root: Path
    initial_code: str
    fingerprint: str

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def scorer_path(self) -> Path:
        return self.root / self.spec.scorer.partition(":")[0]

    @property
    def scorer_function(self) -> str:
        return self.spec.scorer.partition(":")[2]

    @property
    def maximize(self) -> bool:
        return self.spec.metrics.direction == "maximize"

    def fitness(self, value: float) -> float:
        """The primary metric oriented so that larger is always better."""
        return value if self.maximize else -value

    def is_better(self, a: float, b: float) -> bool:
        """True when primary value ``a`` is strictly better than ``b``."""
        return a > b if self.maximize else a < b


def problems_dirs() -> list[Path]:
    """Folders searched for problems by name: ./problems, then the bundled ones."""
    dirs = [Path.cwd() / "problems"]
    bundled = bundled_dir("problems")
    if bundled not in dirs:
        dirs.append(bundled)
    return [d for d in dirs if d.is_dir()]


def resolve_problem_dir(name_or_path: str) -> Path:
    """A problem name under ``problems/`` or a path to any folder with a problem.yaml."""
    as_path = Path(name_or_path).expanduser()
    if (as_path / "problem.yaml").is_file():
        return as_path.resolve()
    if "/" not in name_or_path:
        for d in problems_dirs():
            if (d / name_or_path / "problem.yaml").is_file():
                return (d / name_or_path).resolve()
    known = sorted({p.name for d in problems_dirs() for p in d.iterdir() if (p / "problem.yaml").is_file()})
    raise UserError(
        f"problem={name_or_path}: no problem.yaml there and no problem of that name "
        f"(known: {', '.join(known) or 'none'})"
    )


def _format_validation(path: Path, err: ValidationError) -> str:
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    more = f" (+{len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"{path}: field '{field}': {msg}{more}"


def load_problem(name_or_path: str | Path) -> Problem:
    """Load and validate a problem; raise :class:`UserError` naming the file and field."""
    root = resolve_problem_dir(str(name_or_path))
    path = root / "problem.yaml"
    try:
        # libyaml's parser when there is one: a problem.yaml may hold a long table of data
        raw = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML: {exc}".splitlines()[0]) from exc
    if not isinstance(raw, dict):
        raise UserError(f"{path}: must be a mapping of fields")
    try:
        spec = ProblemSpec.model_validate(raw)
    except ValidationError as exc:
        raise UserError(_format_validation(path, exc)) from exc
    initial = root / spec.initial_program
    if not initial.is_file():
        raise UserError(f"{path}: field 'initial_program': file not found: {initial}")
    if not (root / spec.scorer.partition(":")[0]).is_file():
        raise UserError(f"{path}: field 'scorer': file not found: {root / spec.scorer.partition(':')[0]}")
    return Problem(
        spec=spec,
        root=root,
        initial_code=initial.read_text(),
        fingerprint=fingerprint_dir(root),
    )


def problem_file_paths(root: Path) -> list[Path]:
    """The files that make up the problem folder, sorted: all of them but caches and hidden
    files (``__pycache__``, ``.git``, an editor's or a file manager's droppings). What the
    fingerprint covers, and what the Ray workers receive."""
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and "__pycache__" not in (parts := path.relative_to(root).parts)
        and not any(p.startswith(".") for p in parts)
    )


def fingerprint_dir(root: Path) -> str:
    """sha256 over every file of the problem folder (names and bytes): see
    :func:`problem_file_paths`."""
    h = hashlib.sha256()
    for f in problem_file_paths(root):
        h.update(str(f.relative_to(root)).encode())
        h.update(b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()[:16]
