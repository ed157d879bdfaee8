"""Duplicate detection: formatting-only differences hash the same, real changes do not."""

from __future__ import annotations

import os
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from evolve.codehash import code_hash, normalize_code

BASE = '''def f(x):
    """Square x."""
    y = x * x
    return y + 'a'
'''


def test_hash_is_20_hex_chars() -> None:
    h = code_hash(BASE)
    assert len(h) == 20
    int(h, 16)


def test_formatting_comments_quotes_and_blank_lines_do_not_change_the_hash() -> None:
    variant = '''# a comment at the top

def f( x ):   # trailing comment
    """Square x."""

    y = (x *
         x)
    return y + "a"   \r
'''
    assert code_hash(variant) == code_hash(BASE)


def test_code_and_docstring_changes_change_the_hash() -> None:
    assert code_hash(BASE.replace("x * x", "x * x * x")) != code_hash(BASE)
    assert code_hash(BASE.replace("Square x.", "Cube x.")) != code_hash(BASE)
    assert code_hash(BASE.replace("'a'", "'b'")) != code_hash(BASE)


def test_unparsable_code_falls_back_to_stripping_comments_and_blank_lines() -> None:
    broken = "def f(:\n    return 1\n"
    noisy = "# header\ndef f(:   # oops\n\n    return 1   \n"
    assert code_hash(broken) == code_hash(noisy)
    assert normalize_code(noisy) == b"tdef f(:\n    return 1"
    assert code_hash(broken) != code_hash(broken.replace("1", "2"))


def test_fallback_keeps_hash_inside_strings() -> None:
    assert normalize_code("x = '#not a comment'\ny = (") == b"tx = '#not a comment'\ny = ("


def test_code_that_parses_but_does_not_compile_still_ignores_formatting() -> None:
    top_level_return = "x = 1\nreturn x\n"
    assert code_hash("x = 1   # one\n\nreturn (x)\n") == code_hash(top_level_return)
    assert code_hash(top_level_return) != code_hash(top_level_return.replace("1", "2"))


def test_hash_is_the_same_in_every_process_whatever_the_hash_seed() -> None:
    # Hashes are stored and compared again when a run resumes in a new process: set
    # constants (whose order follows the string hash seed) must not change them.
    code = "def f(x):\n    return x in {'alpha', 'beta', 'gamma', 1.5, ('z', 2)}\n"
    script = f"from evolve.codehash import code_hash; print(code_hash({code!r}))"
    seen = {
        subprocess.run(
            [sys.executable, "-c", script], env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        for seed in range(4)
    }
    assert seen == {code_hash(code)}


_comment = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=20)


@given(
    comments=st.lists(st.tuples(st.integers(0, 4), _comment), max_size=5),
    blanks=st.lists(st.integers(0, 4), max_size=5),
)
def test_hash_invariant_under_added_comments_and_blank_lines(
    comments: list[tuple[int, str]], blanks: list[int]
) -> None:
    lines = BASE.rstrip("\n").split("\n")
    for at, text in comments:
        indent = "    " if 0 < at < len(lines) else ""
        lines.insert(at, f"{indent}# {text}")
    for at in blanks:
        lines.insert(at, "")
    assert code_hash("\n".join(lines) + "\n") == code_hash(BASE)
