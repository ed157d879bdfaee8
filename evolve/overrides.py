"""Command-line overrides, Hydra style: what they mean, and what to say when one is wrong.

Group options (``llm=openai`` picks ``configs/llm/openai.yaml``), unknown keys with the closest
valid ones, the problem given as a bare word, the jobs of a sweep (``-m seed=0,1,2``), what a
resume changed, and the resolved config as YAML.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from evolve.config import RunConfig, config_keys
from evolve.errors import UserError
from evolve.paths import bundled_dir


def config_dir() -> Path:
    return bundled_dir("configs")


#: The Hydra config groups: ``llm=openai`` picks ``configs/llm/openai.yaml``.
GROUPS = ("llm", "evaluator", "database", "search")


def group_options(group: str) -> list[str]:
    """The options of a config group: the names of ``configs/<group>/*.yaml``."""
    return sorted(f.stem for f in (config_dir() / group).glob("*.yaml"))


def override_error(exc: BaseException) -> str:
    """Hydra's error as one line that names the override and what would be valid."""
    text = str(exc)
    missing = re.search(r"Could not find '([A-Za-z_]+)/([^']+)'", text)
    if missing and missing.group(1) in GROUPS:
        group, option = missing.groups()
        return f"{group}={option}: no such option; {group} is one of: {', '.join(group_options(group))}"
    bad = re.search(r"Could not override '([^']+)'", text)
    if bad:
        return unknown_key_message(bad.group(1))
    return one_line(exc)


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


def group_file(group: str, option: str) -> dict[str, Any]:
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


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
