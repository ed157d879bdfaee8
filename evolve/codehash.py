"""A hash of a program's code that ignores formatting, used to spot duplicate candidates.

Two programs that differ only in comments, blank lines, trailing whitespace, quote style or
line layout get the same hash, so the run does not spend an evaluation on a copy. The canonical
form is the compiled module with its source positions removed (line table, first line), written
with ``marshal`` version 2 (no object references, so the bytes do not depend on reference
counts; frozenset constants are written sorted, so they do not depend on the hash seed). That
costs about half of ``ast.dump(ast.parse(code))``, the previous canonical form: ``compile`` never
builds the Python-level AST. Docstrings are kept (``optimize=0``); what the compiler folds away
(``1 + 1`` against ``2``, an ``if False:`` block) counts as the same program, which it is.
Code that parses but does not compile (``return`` at module level) falls back to the AST dump;
code that does not parse, to a line-based strip of comments and whitespace.

The bytes differ between Python versions, so a run resumed under another interpreter only
misses duplicates of its earlier programs; it never merges two different ones.
"""

from __future__ import annotations

import ast
import hashlib
import marshal
import warnings
from types import CodeType

__all__ = ["code_hash", "normalize_code"]

HASH_CHARS = 20


def _strip_comment(line: str) -> str:
    # Without a parser we only trust a '#' on a line with no quote: it cannot be inside a string.
    if "#" in line and "'" not in line and '"' not in line:
        line = line[: line.index("#")]
    return line.rstrip()


def _without_positions(code: CodeType) -> CodeType:
    consts = tuple(_without_positions(c) if isinstance(c, CodeType) else c for c in code.co_consts)
    return code.replace(co_consts=consts, co_linetable=b"", co_firstlineno=1)


def normalize_code(code: str) -> bytes:
    """Canonical bytes of ``code``: its compiled form without source positions, else its AST
    dump, else its text with comments, trailing spaces and blank lines stripped."""
    with warnings.catch_warnings():  # e.g. invalid escapes: the candidate's business
        warnings.simplefilter("ignore")
        try:
            compiled = compile(code, "<candidate>", "exec", dont_inherit=True, optimize=0)
            return b"c" + marshal.dumps(_without_positions(compiled), 2)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            pass
        try:
            return b"a" + ast.dump(ast.parse(code)).encode("utf-8")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            pass
    lines = (_strip_comment(ln) for ln in code.replace("\r\n", "\n").split("\n"))
    return b"t" + "\n".join(ln for ln in lines if ln).encode("utf-8", "surrogatepass")


def code_hash(code: str) -> str:
    """First 20 hex chars of the SHA-256 of :func:`normalize_code` of ``code``."""
    return hashlib.sha256(normalize_code(code)).hexdigest()[:HASH_CHARS]
