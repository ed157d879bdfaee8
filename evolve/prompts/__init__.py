"""Prompt rendering from template files.

The templates live in ``evolve/prompts/templates``; a problem overrides any of them by shipping a
file of the same name in its own ``prompts/`` folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from evolve.problem import Problem
from evolve.records import ErrorInfo, Message, Program

TEMPLATES = Path(__file__).resolve().parent / "templates"
MODES = ("diff", "rewrite", "crossover")


@dataclass(frozen=True)
class PromptContext:
    """What one proposal's prompt shows."""

    parent: Program
    mode: str = "diff"
    top: Sequence[Program] = ()
    diverse: Sequence[Program] = ()
    failures: Sequence[ErrorInfo] = ()
    other: Program | None = None  # second parent, for crossover
    extra: dict[str, object] = field(default_factory=dict)


class PromptBuilder:
    """Renders the system and user messages for a problem."""

    def __init__(self, problem: Problem) -> None:
        self._problem = problem
        loaders: list[jinja2.BaseLoader] = []
        override = problem.root / "prompts"
        if override.is_dir():
            loaders.append(jinja2.FileSystemLoader(override))
        loaders.append(jinja2.FileSystemLoader(TEMPLATES))
        self._env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=False,
            autoescape=False,
            auto_reload=False,  # templates are read once per run (then from the env's cache)
        )
        spec = problem.spec
        self._base = {
            "problem": spec,
            "primary": spec.metrics.primary,
            "maximize": problem.maximize,
            "metric_descriptions": spec.metrics.descriptions,
            "best_known": spec.best_known,
            "limits": spec.limits,
            "visible": spec.metrics.visible,
        }
        self._system = self._env.get_template("system.j2").render(**self._base).strip()

    @property
    def system(self) -> str:
        return self._system

    def render(self, ctx: PromptContext) -> tuple[Message, ...]:
        """The messages for one proposal."""
        if ctx.mode not in MODES:
            raise ValueError(f"unknown proposal mode {ctx.mode!r}; expected one of {MODES}")
        if ctx.mode == "crossover" and ctx.other is None:
            raise ValueError("crossover needs a second parent")
        user = self._env.get_template(f"{ctx.mode}.j2").render(
            **self._base,
            parent=ctx.parent,
            top=list(ctx.top),
            diverse=list(ctx.diverse),
            failures=list(ctx.failures),
            other=ctx.other,
            **ctx.extra,
        )
        return (Message(role="system", content=self._system), Message(role="user", content=user.strip()))


__all__ = ["MODES", "PromptBuilder", "PromptContext"]
