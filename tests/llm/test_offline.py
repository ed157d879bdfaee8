"""The offline mutator: reproducible, block-respecting, and a real hill climber over constants."""

from __future__ import annotations

import asyncio
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evolve.diffs import (
    DiffError,
    apply_edits,
    evolve_blocks,
    extract_program,
    merge_rewrite,
    parse_edits,
)
from evolve.llm.offline import OfflineMutator
from evolve.records import LLMReply, LLMRequest, Message

PARENT = """import math


def helper(x):
    return x * 2.5 + 1


def solve(n):
    # EVOLVE-BLOCK-START
    a = 3.0
    b = -2.0
    total = 0
    for i in range(n):
        total += i * a - b
        if total < 10:
            total = max(total, 2 ** 3)
    # EVOLVE-BLOCK-END
    return helper(total) - 4.5
"""

TOY = """def f():
    # EVOLVE-BLOCK-START
    a = 3.0
    b = -2.0
    # EVOLVE-BLOCK-END
    return a, b
"""


def _reply(mutator: OfflineMutator, code: str, seed: int, mode: str = "diff") -> LLMReply:
    request = LLMRequest(
        messages=(Message(role="user", content="improve it"),),
        mode=mode,
        parent_code=code,
        seed=seed,
    )
    return asyncio.run(mutator.complete(request))


def _outside_blocks(code: str) -> list[str]:
    lines = code.split("\n")
    inside = {i for lo, hi in evolve_blocks(code) for i in range(lo, hi)}
    return [line for i, line in enumerate(lines) if i not in inside]


def test_same_seed_and_request_give_the_same_reply() -> None:
    first = _reply(OfflineMutator(seed=7), PARENT, seed=3)
    second = _reply(OfflineMutator(seed=7), PARENT, seed=3)
    assert first.text == second.text


def test_different_request_seeds_give_different_replies() -> None:
    texts = {_reply(OfflineMutator(seed=7), PARENT, seed=s).text for s in range(10)}
    assert len(texts) >= 8


def test_reply_is_a_well_formed_llm_reply() -> None:
    reply = _reply(OfflineMutator(model="offline-x"), PARENT, seed=0)
    assert reply.model == "offline-x"
    assert reply.cost_usd == 0.0
    assert reply.output_tokens == len(reply.text) // 4
    assert reply.input_tokens == len("improve it") // 4
    assert reply.latency_s >= 0.0
    assert "<<<<<<< SEARCH" in reply.text


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32), mutator_seed=st.integers(0, 100))
def test_diff_reply_applies_to_parent_and_changes_only_the_evolve_block(
    seed: int, mutator_seed: int
) -> None:
    text = _reply(OfflineMutator(seed=mutator_seed), PARENT, seed=seed).text
    edits = parse_edits(text)
    assert 1 <= len(edits) <= 3
    child = apply_edits(PARENT, edits)
    assert child != PARENT
    compile(child, "<child>", "exec")
    assert _outside_blocks(child) == _outside_blocks(PARENT)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_rewrite_reply_is_a_fenced_program_differing_only_in_the_block(seed: int) -> None:
    text = _reply(OfflineMutator(), PARENT, seed=seed, mode="rewrite").text
    assert "```python" in text
    child = extract_program(text)
    assert child != PARENT
    assert merge_rewrite(PARENT, child) == child
    compile(child, "<child>", "exec")
    assert _outside_blocks(child) == _outside_blocks(PARENT)


def test_program_without_markers_is_mutated_anywhere() -> None:
    code = "x = 1.5\ny = x * 2.0\n"
    children = {
        apply_edits(code, parse_edits(_reply(OfflineMutator(), code, s).text)) for s in range(20)
    }
    assert len(children) > 5
    assert any("1.5" not in c for c in children)
    assert any("2.0" not in c for c in children)


def test_repeated_lines_get_enough_context_to_be_unique() -> None:
    code = "def f():\n    # EVOLVE-BLOCK-START\n    x = 1.0\n    y = 0\n    x = 1.0\n    z = 5\n    # EVOLVE-BLOCK-END\n    return x\n"
    for seed in range(30):
        child = apply_edits(code, parse_edits(_reply(OfflineMutator(), code, seed).text))
        assert child != code


def test_nothing_to_mutate_gives_a_reply_that_fails_parsing() -> None:
    code = "def f():\n    # EVOLVE-BLOCK-START\n    return 'hello'\n    # EVOLVE-BLOCK-END\n"
    reply = _reply(OfflineMutator(), code, seed=0)
    with pytest.raises(DiffError):
        parse_edits(reply.text)


def test_max_edits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_edits"):
        OfflineMutator(max_edits=0)


def test_name_and_aclose() -> None:
    mutator = OfflineMutator(model="m")
    assert mutator.name == "m"
    asyncio.run(mutator.aclose())


def _objective(code: str) -> float:
    namespace: dict[str, object] = {}
    exec(code, namespace)
    a, b = namespace["f"]()  # type: ignore[operator]
    return -((a - 1.234) ** 2) - (b - 0.5) ** 2


@pytest.mark.parametrize("mutator_seed", [0, 1])
def test_hill_climb_over_constants_reaches_the_optimum(mutator_seed: int) -> None:
    # Reaching b = 0.5 from -2.0 needs steps that cross zero, and a = 1.234 needs fine steps:
    # a mutator with only multiplicative noise, or only coarse noise, stays below the bar.
    mutator = OfflineMutator(seed=mutator_seed)
    best, best_score = TOY, _objective(TOY)
    for iteration in range(300):
        reply = _reply(mutator, best, seed=iteration)
        child = apply_edits(best, parse_edits(reply.text))
        score = _objective(child)
        if score > best_score:
            best, best_score = child, score
    assert _objective(TOY) < -9.0
    assert best_score > -1e-4, best
    assert math.isfinite(best_score)


def test_crlf_parent_gets_edits_that_apply_to_it() -> None:
    code = PARENT.replace("\n", "\r\n")
    for seed in range(10):
        child = apply_edits(code, parse_edits(_reply(OfflineMutator(), code, seed).text))
        assert child != code
        assert child.count("\r\n") == code.count("\r\n")


def test_non_ascii_lines_are_mutated_at_the_right_columns() -> None:
    code = "# EVOLVE-BLOCK-START\nlabel = 'é→ü'; y = min(len(label), 3) + 2.5\n# EVOLVE-BLOCK-END\n"
    for seed in range(30):
        child = apply_edits(code, parse_edits(_reply(OfflineMutator(), code, seed).text))
        compile(child, "<child>", "exec")
        assert "label = 'é→ü'; y = " in child


def test_negative_literal_before_power_is_parenthesized() -> None:
    code = "x = 2.0 ** 3\n"
    children = {
        apply_edits(code, parse_edits(_reply(OfflineMutator(), code, s).text)) for s in range(200)
    }
    negatives = [c for c in children if c.startswith("x = (-")]
    assert negatives, children
    for child in children:
        compile(child, "<child>", "exec")


def test_unparsable_parent_still_gets_a_reply() -> None:
    code = "def f(:\n    return 1.0\n"
    reply = _reply(OfflineMutator(), code, seed=0)
    assert reply.text


_literal = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(-(10**30), 10**30).map(str),
)


@settings(max_examples=80, deadline=None)
@given(
    literals=st.lists(_literal, min_size=1, max_size=6),
    ops=st.lists(st.sampled_from(["+", "-", "*", "/", "<", ">=", "**"]), min_size=6, max_size=6),
    seed=st.integers(0, 2**32),
)
def test_edits_on_generated_programs_apply_compile_and_stay_in_the_block(
    literals: list[str], ops: list[str], seed: int
) -> None:
    body = [f"    v{i} = {lit}" for i, lit in enumerate(literals)]
    body.append(f"    w = v0 {ops[0]} (v0 {ops[1]} 2) {ops[2]} min(v0, 1)")
    body.append(f"    label = f'{{v0 {ops[3]} 1}}'")
    code = "\n".join(
        ["def f():", "    x = 1 + 2", "    # EVOLVE-BLOCK-START", *body,
         "    # EVOLVE-BLOCK-END", "    return v0 + x", ""]
    )  # fmt: skip
    text = _reply(OfflineMutator(), code, seed=seed).text
    child = apply_edits(code, parse_edits(text))
    assert child != code
    compile(child, "<child>", "exec")
    assert _outside_blocks(child) == _outside_blocks(code)
    assert f"label = f'{{v0 {ops[3]} 1}}'" in child  # operators inside f-strings are left alone
