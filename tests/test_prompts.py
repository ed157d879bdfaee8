"""Golden tests: the rendered prompts are compared with files under tests/golden/.

Regenerate after an intended template change with ``EVOLVE_UPDATE_GOLDEN=1 pytest tests/test_prompts.py``
and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evolve.problem import Problem
from evolve.prompts import PromptBuilder, PromptContext
from evolve.records import ErrorInfo, Program, Status

GOLDEN = Path(__file__).parent / "golden"


def _program(pid: str, code: str, score: float, status: Status = Status.EVALUATED) -> Program:
    return Program(
        id=pid, run_id="r", iteration=int(pid[-1]) * 7, parent_id=None, island=0, generation=0, code=code,
        code_hash="h", status=status, metrics={"energy": score, "min_distance": score / 1000},
        feedback="",
    )


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("EVOLVE_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


@pytest.fixture
def ctx(toy: Problem) -> PromptContext:
    parent = _program("aaaaaaaa1111", toy.initial_code, 130.775).model_copy(update={"feedback": "points 3 and 4 are closest"})
    return PromptContext(
        parent=parent,
        top=(_program("bbbbbbbb2222", "def run():\n    return []\n", 120.5),),
        diverse=(_program("cccccccc3333", "def run():\n    return [[0, 0]]\n", 140.25),),
        failures=(ErrorInfo(kind=Status.REJECTED, message="point 2 (1.2, 0.5) is outside the unit square"),),
    )


def test_system_prompt_golden(toy: Problem) -> None:
    _check("system.txt", PromptBuilder(toy).system + "\n")


def test_diff_prompt_golden(toy: Problem, ctx: PromptContext) -> None:
    system, user = PromptBuilder(toy).render(ctx)
    assert system.role == "system" and user.role == "user"
    _check("diff_user.txt", user.content + "\n")


def test_crossover_prompt_shows_both_parents(toy: Problem, ctx: PromptContext) -> None:
    other = _program("dddddddd4444", "def run():\n    return 'other'\n", 110.0)
    _, user = PromptBuilder(toy).render(PromptContext(parent=ctx.parent, mode="crossover", other=other))
    assert "return 'other'" in user.content and "EVOLVE-BLOCK-START" in user.content
    with pytest.raises(ValueError, match="second parent"):
        PromptBuilder(toy).render(PromptContext(parent=ctx.parent, mode="crossover"))


def test_problem_can_override_a_template(toy: Problem, ctx: PromptContext) -> None:
    (toy.root / "prompts").mkdir()
    (toy.root / "prompts" / "diff.j2").write_text("custom {{ primary }} for {{ parent.id }}")
    _, user = PromptBuilder(toy).render(ctx)
    assert user.content == "custom energy for aaaaaaaa1111"


def test_hidden_metrics_are_not_shown(toy: Problem, ctx: PromptContext) -> None:
    spec = toy.spec.model_copy(update={"metrics": toy.spec.metrics.model_copy(update={"visible": ("energy",)})})
    hidden = toy.model_copy(update={"spec": spec})
    _, user = PromptBuilder(hidden).render(ctx)
    assert "energy=130" in user.content and "min_distance" not in user.content
