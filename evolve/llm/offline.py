"""The built-in offline mutator: a stand-in "LLM" that needs no key and no network.

It reads the parent program from ``LLMRequest.parent_code`` and answers like a real model: in
diff mode with SEARCH/REPLACE blocks, in rewrite mode with the whole program in a ```python
fence, so its proposals travel the very same parse-and-apply path as a network model's.

Its mutations are small and local, and only inside EVOLVE blocks when the parent has markers:
perturbing numeric literals (most of the time: multiplicative log-normal noise at a random scale,
a hill climber over a program's constants), swapping ``+``/``-`` and ``*``/``/``, ``<``/``<=`` and
``>``/``>=``, ``min``/``max``, and moving a ``range`` bound by one. Each child is compiled before
it is proposed, so the mutator never emits a syntax error on purpose.
"""

from __future__ import annotations

import ast
import bisect
import io
import keyword
import math
import time
import tokenize
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evolve.diffs import DiffError, Edit, apply_edits, evolve_blocks
from evolve.records import LLMReply, LLMRequest

__all__ = ["OfflineMutator", "propose"]

#: Relative step sizes for literal noise; drawing one per edit mixes coarse and fine moves.
_SCALES = (0.003, 0.01, 0.03, 0.1, 0.3)
#: How often each kind of mutation is chosen when the program offers it.
_KIND_WEIGHTS = {"number": 6.0, "binop": 1.0, "compare": 1.0, "minmax": 1.0, "range": 1.0}
_SWAPS = {
    "+": "-", "-": "+", "*": "/", "/": "*",
    "+=": "-=", "-=": "+=", "*=": "/=", "/=": "*=",
    "<": "<=", "<=": "<", ">": ">=", ">=": ">",
    "min": "max", "max": "min",
}  # fmt: skip
_BINOPS: dict[type[ast.AST], str] = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_CMPOPS: dict[type[ast.AST], str] = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_SMALL_INT = 16  # ints up to this size look like counts or indices: step them by one
_ATTEMPTS = 8  # mutations tried per edit before giving up on it
_SKIP_TOKENS = frozenset(
    {tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT,
     tokenize.ENDMARKER}
)  # fmt: skip


# Token types of Python 3.12+ f-strings (-1: never matches on 3.11).
_FSTRING_START: int = getattr(tokenize, "FSTRING_START", -1)
_FSTRING_END: int = getattr(tokenize, "FSTRING_END", -1)


@dataclass(frozen=True, slots=True)
class _Site:
    """A span of one line that a mutation may rewrite."""

    kind: str
    line: int  # 0-based line index
    start: int  # character columns, half-open
    end: int
    text: str
    wrap_negative: bool = False  # a number followed by '**', '.' or '[': parenthesize negatives
    is_constant: bool = False  # a range bound that is an int literal


def _compiles(code: str) -> bool:
    try:
        with warnings.catch_warnings():  # e.g. invalid escapes: the candidate's business
            warnings.simplefilter("ignore")
            compile(code, "<candidate>", "exec")
    except (SyntaxError, ValueError):
        return False
    return True


def _is_operand(tok: tokenize.TokenInfo | None) -> bool:
    """Whether ``tok`` ends an operand, which makes a following '-' binary."""
    if tok is None:
        return False
    if tok.type in (tokenize.NUMBER, tokenize.STRING, _FSTRING_END):
        return True
    if tok.type == tokenize.NAME:
        return not keyword.iskeyword(tok.string) or tok.string in ("True", "False", "None")
    return tok.type == tokenize.OP and tok.string in (")", "]", "}")


def _tokens(code: str) -> list[tokenize.TokenInfo]:
    try:
        toks = tokenize.generate_tokens(io.StringIO(code).readline)
        return [t for t in toks if t.type not in _SKIP_TOKENS]
    except (tokenize.TokenError, SyntaxError):
        return []


def _number_sites(toks: Sequence[tokenize.TokenInfo]) -> list[_Site]:
    sites = []
    depth = 0  # f-string nesting: Python 3.12+ tokenizes inside f-strings; leave those alone
    for i, tok in enumerate(toks):
        depth += (tok.type == _FSTRING_START) - (tok.type == _FSTRING_END)
        if tok.type != tokenize.NUMBER or tok.string[-1] in "jJ" or depth > 0:
            continue
        start = tok.start
        prev = toks[i - 1] if i >= 1 else None
        if (
            prev is not None
            and prev.string == "-"
            and prev.start[0] == tok.start[0]
            and not _is_operand(toks[i - 2] if i >= 2 else None)
        ):
            start = prev.start
        nxt = toks[i + 1].string if i + 1 < len(toks) else ""
        if start[0] != tok.end[0]:
            continue
        text = tok.line[start[1] : tok.end[1]]
        sites.append(
            _Site("number", start[0] - 1, start[1], tok.end[1], text, nxt in ("**", ".", "["))
        )
    return sites


def _char_col(lines: Sequence[str], lineno: int, byte_col: int) -> int:
    """Convert an ast UTF-8 byte offset on 1-based ``lineno`` to a character column."""
    return len(lines[lineno - 1].encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


def _op_site(
    toks: Sequence[tokenize.TokenInfo],
    starts: Sequence[tuple[int, int]],
    between: tuple[tuple[int, int], tuple[int, int]],
    op: str,
    kind: str,
) -> _Site | None:
    """The ``op`` token between two positions (1-based line, char column), past any closing
    brackets; None if another token comes first (e.g. the operator sits inside an f-string)."""
    after, before = between
    for tok in toks[bisect.bisect_left(starts, after) :]:
        if tok.start >= before:
            return None
        if tok.type == tokenize.OP and tok.string == op:
            return _Site(kind, tok.start[0] - 1, tok.start[1], tok.end[1], op)
        if tok.type != tokenize.OP or tok.string not in (")", "]", "}"):
            return None
    return None


def _gap(
    left: ast.expr, right: ast.expr, lines: Sequence[str]
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Character positions of the end of ``left`` and the start of ``right``."""
    end_line = left.end_lineno or left.lineno
    return (
        (end_line, _char_col(lines, end_line, left.end_col_offset or 0)),
        (right.lineno, _char_col(lines, right.lineno, right.col_offset)),
    )


def _span_site(node: ast.expr, lines: Sequence[str], kind: str, is_constant: bool) -> _Site | None:
    if node.end_lineno != node.lineno or node.end_col_offset is None:
        return None
    start = _char_col(lines, node.lineno, node.col_offset)
    end = _char_col(lines, node.lineno, node.end_col_offset)
    text = lines[node.lineno - 1][start:end]
    return _Site(kind, node.lineno - 1, start, end, text, False, is_constant)


def _in_fstrings(tree: ast.AST) -> set[int]:
    """Ids of nodes inside f-strings, whose positions tokens cannot confirm: left alone."""
    return {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for inner in ast.walk(node)
    }


def _node_sites(
    node: ast.AST, lines: Sequence[str], toks: Sequence[tokenize.TokenInfo],
    starts: Sequence[tuple[int, int]],
) -> list[_Site | None]:  # fmt: skip
    """The operator, min/max and range sites that one AST node offers."""
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        gap = _gap(node.left, node.right, lines)
        return [_op_site(toks, starts, gap, _BINOPS[type(node.op)], "binop")]
    if isinstance(node, ast.AugAssign) and type(node.op) in _BINOPS:
        gap = _gap(node.target, node.value, lines)
        return [_op_site(toks, starts, gap, _BINOPS[type(node.op)] + "=", "binop")]
    if isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        return [
            _op_site(toks, starts, _gap(left, right, lines), _CMPOPS[type(cmp)], "compare")
            for left, right, cmp in zip(operands[:-1], operands[1:], node.ops, strict=True)
            if type(cmp) in _CMPOPS
        ]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id in ("min", "max"):
            return [_span_site(node.func, lines, "minmax", False)]
        if node.func.id == "range" and not node.keywords:
            return [
                _span_site(
                    arg, lines, "range", isinstance(arg, ast.Constant) and type(arg.value) is int
                )
                for arg in node.args[:2]
                if not isinstance(arg, ast.Starred)
            ]
    return []


def _ast_sites(code: str, toks: Sequence[tokenize.TokenInfo]) -> list[_Site]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return []
    lines = code.split("\n")
    starts = [t.start for t in toks]
    skip = _in_fstrings(tree)
    sites = [
        site
        for node in ast.walk(tree)
        if id(node) not in skip
        for site in _node_sites(node, lines, toks, starts)
    ]
    return [s for s in sites if s is not None]


def _new_number(text: str, wrap: bool, rng: np.random.Generator) -> str | None:
    """A perturbed literal for ``text`` (which may carry a unary minus), or None if unchanged."""
    try:
        value = ast.literal_eval(text.replace(" ", ""))
    except (ValueError, SyntaxError):
        return None
    scale = float(rng.choice(_SCALES))
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int):
        if abs(value) <= _SMALL_INT:
            new_int = value + int(rng.choice((-1, 1)))
        else:
            try:
                new_int = round(value * math.exp(scale * rng.standard_normal()))
            except OverflowError:  # an int too large for a float: leave it alone
                return None
            new_int = new_int if new_int != value else value + int(rng.choice((-1, 1)))
        out = str(new_int)
    else:
        u = rng.random()
        if value != 0.0 and u < 0.75:  # multiplicative: the scale-free step for constants
            new = value * math.exp(scale * rng.standard_normal())
        elif value != 0.0 and u >= 0.95:  # a sign flip crosses zero in one step
            new = -value
        else:  # additive: lets a constant reach or cross zero
            new = value + scale * max(abs(value), 1.0) * rng.standard_normal()
        new = float(f"{new:.6g}")
        if not math.isfinite(new) or new == value:
            return None
        out = repr(new)
    return f"({out})" if wrap and out.startswith("-") else out


def _new_text(site: _Site, rng: np.random.Generator) -> str | None:
    if site.kind == "number":
        return _new_number(site.text, site.wrap_negative, rng)
    if site.kind == "range":
        step = int(rng.choice((-1, 1)))
        if site.is_constant:
            return str(int(site.text) + step)
        return f"{site.text} {'+' if step > 0 else '-'} 1"
    return _SWAPS.get(site.text)


def _region(blocks: Sequence[tuple[int, int]], n_lines: int, line: int) -> tuple[int, int] | None:
    if not blocks:
        return 0, n_lines
    return next(((lo, hi) for lo, hi in blocks if lo <= line < hi), None)


def _count(lines: Sequence[str], pattern: Sequence[str]) -> int:
    n = len(pattern)
    return sum(1 for i in range(len(lines) - n + 1) if list(lines[i : i + n]) == list(pattern))


def _make_edit(
    lines: Sequence[str], line: int, new_line: str, region: tuple[int, int]
) -> Edit | None:
    """An edit replacing ``lines[line]``, with just enough context to match once in the file."""
    lo, hi = line, line + 1
    grow_down = True
    while _count(lines, lines[lo:hi]) > 1:
        can_down, can_up = hi < region[1], lo > region[0]
        if not (can_down or can_up):
            return None
        if (grow_down and can_down) or not can_up:
            hi += 1
        else:
            lo -= 1
        grow_down = not grow_down
    search = lines[lo:hi]
    replace = [*lines[lo:line], new_line, *lines[line + 1 : hi]]
    return Edit("".join(s + "\n" for s in search), "".join(r + "\n" for r in replace))


def _sites(code: str, blocks: Sequence[tuple[int, int]]) -> dict[str, list[_Site]]:
    """Every mutable site of ``code`` inside its EVOLVE blocks (anywhere without blocks), by kind."""
    toks = _tokens(code)
    n_lines = code.count("\n") + 1
    by_kind: dict[str, list[_Site]] = {}
    for site in [*_number_sites(toks), *_ast_sites(code, toks)]:
        if _region(blocks, n_lines, site.line) is not None:
            by_kind.setdefault(site.kind, []).append(site)
    return by_kind


def _choose(by_kind: dict[str, list[_Site]], rng: np.random.Generator) -> _Site:
    """A kind by :data:`_KIND_WEIGHTS`, then a site of that kind uniformly."""
    kinds = sorted(by_kind)
    weights = np.array([_KIND_WEIGHTS[k] for k in kinds])
    kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
    sites = by_kind[kind]
    return sites[int(rng.integers(len(sites)))]


def _mutate_once(
    code: str, parent: str, blocks: Sequence[tuple[int, int]], check: bool, rng: np.random.Generator
) -> tuple[str, Edit] | None:
    """One edit of ``code`` (LF newlines, no trailing newline): the new code and the edit.

    A result equal to ``parent`` is refused, so that later edits never undo earlier ones.
    """
    by_kind = _sites(code, blocks)
    if not by_kind:
        return None
    lines = code.split("\n")
    for _ in range(_ATTEMPTS):
        site = _choose(by_kind, rng)
        new = _new_text(site, rng)
        if new is None or new == site.text:
            continue
        old_line = lines[site.line]
        new_line = old_line[: site.start] + new + old_line[site.end :]
        new_code = "\n".join([*lines[: site.line], new_line, *lines[site.line + 1 :]])
        region = _region(blocks, len(lines), site.line)
        if region is None or new_code == parent or (check and not _compiles(new_code)):
            continue
        edit = _make_edit(lines, site.line, new_line, region)
        if edit is not None:
            return new_code, edit
    return None


def propose(parent: str, max_edits: int, rng: np.random.Generator) -> tuple[str, tuple[Edit, ...]]:
    """Mutate ``parent`` with 1 to ``max_edits`` edits; return the child and the edits.

    The edits are to be applied in order (each to the result of the previous one), exactly as
    :func:`evolve.diffs.apply_edits` does. No edits means nothing could be mutated.
    """
    text = parent.replace("\r\n", "\n")
    trailing = text.endswith("\n")
    code = parent_code = text[:-1] if trailing else text
    try:
        blocks = evolve_blocks(code)
    except DiffError:
        return parent, ()
    check = _compiles(code)  # a parent that does not compile cannot yield a child that does
    weights = 0.5 ** np.arange(max_edits)
    n_edits = 1 + int(rng.choice(max_edits, p=weights / weights.sum()))
    edits: list[Edit] = []
    for _ in range(n_edits):
        step = _mutate_once(code, parent_code, blocks, check, rng)
        if step is None:
            break
        code, edit = step
        edits.append(edit)
    child = code + ("\n" if trailing else "")
    try:
        if not edits or apply_edits(text, edits) != child:
            return parent, ()
    except DiffError:
        return parent, ()
    return child, tuple(edits)


def _render_edits(edits: Sequence[Edit]) -> str:
    blocks = [f"<<<<<<< SEARCH\n{e.search}=======\n{e.replace}>>>>>>> REPLACE\n" for e in edits]
    plural = "s" if len(edits) > 1 else ""
    return f"Proposed {len(edits)} edit{plural} to the program:\n\n" + "\n".join(blocks)


_NOTHING = (
    "The offline mutator found nothing to change in the program's EVOLVE-BLOCK: no numeric "
    "literal, arithmetic or comparison operator, min/max or range call it could mutate."
)


class OfflineMutator:
    """An :class:`~evolve.llm.base.LLM` that mutates the parent locally, with no network.

    Each reply is reproducible: its randomness comes only from ``(seed, request.seed)``.
    """

    def __init__(self, seed: int = 0, max_edits: int = 3, model: str = "offline-mutator") -> None:
        if max_edits < 1:
            raise ValueError(f"max_edits must be at least 1, got {max_edits}")
        self.seed = seed
        self.max_edits = max_edits
        self.model = model

    @property
    def name(self) -> str:
        """The model name recorded with each reply."""
        return self.model

    def _rng(self, request_seed: int) -> np.random.Generator:
        return np.random.default_rng(
            np.random.SeedSequence([self.seed % 2**64, request_seed % 2**64])
        )

    def reply_text(self, request: LLMRequest) -> str:
        """The reply a model would write for ``request``: SEARCH/REPLACE blocks or a fenced program."""
        rng = self._rng(request.seed)
        child, edits = propose(request.parent_code, self.max_edits, rng)
        if not edits:
            return _NOTHING
        if request.mode == "rewrite":
            body = child.replace("\r\n", "\n")
            body = body if body.endswith("\n") else body + "\n"
            return f"Here is the improved program:\n\n```python\n{body}```\n"
        return _render_edits(edits)

    async def complete(self, request: LLMRequest) -> LLMReply:
        """Mutate ``request.parent_code`` and answer in ``request.mode`` ("diff" or "rewrite")."""
        started = time.perf_counter()
        text = self.reply_text(request)
        prompt_chars = sum(len(m.content) for m in request.messages)
        return LLMReply(
            model=self.model,
            text=text,
            input_tokens=prompt_chars // 4,
            output_tokens=len(text) // 4,
            latency_s=time.perf_counter() - started,
            cost_usd=0.0,
        )

    async def aclose(self) -> None:
        """Nothing to release: the mutator holds no connection."""
