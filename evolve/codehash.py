"""A hash of a program's code that ignores formatting, used to spot duplicate candidates.

Two programs that differ only in comments, blank lines, trailing whitespace, quote style or
line layout get the same hash, so the run does not spend an evaluation on a copy. Normalization
is ``ast.dump(ast.parse(code))``: it drops only what the parser drops (docstrings are kept), and
costs about 70% of an ``ast.unparse`` of the tree.
Code that does not parse falls back to a line-based strip of comments and whitespace.
"""

from __future__ import annotations

import ast
import hashlib
import warnings

__all__ = ["code_hash", "normalize_code"]

HASH_CHARS = 20


def _strip_comment(line: str) -> str:
    # Without a parser we only trust a '#' on a line with no quote: it cannot be inside a string.
    if "#" in line and "'" not in line and '"' not in line:
        line = line[: line.index("#")]
    return line.rstrip()


def normalize_code(code: str) -> str:
    """Canonical text of ``code``: its AST dump, or a comment/whitespace strip if unparsable."""
    try:
        with warnings.catch_warnings():  # e.g. invalid escapes: the candidate's business
            warnings.simplefilter("ignore")
            return ast.dump(ast.parse(code))
    except (SyntaxError, ValueError, RecursionError):
        lines = (_strip_comment(ln) for ln in code.replace("\r\n", "\n").split("\n"))
        return "\n".join(ln for ln in lines if ln)


def code_hash(code: str) -> str:
    """First 20 hex chars of the SHA-256 of :func:`normalize_code` of ``code``."""
    return hashlib.sha256(normalize_code(code).encode("utf-8")).hexdigest()[:HASH_CHARS]
