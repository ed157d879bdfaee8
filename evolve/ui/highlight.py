"""Code and diffs as highlighted HTML (Pygments, on the server: the page runs no highlighter).

Pygments escapes every character of the text it is given, so a candidate's code or a model's
reply cannot inject markup into the page.
"""

from __future__ import annotations

from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer, PythonLexer

_FORMATTER = HtmlFormatter(cssclass="hl", linenos=False, wrapcode=True)


def python_html(code: str) -> Markup:
    return Markup(highlight(code, PythonLexer(), _FORMATTER))  # Pygments escapes the text


def diff_html(diff: str) -> Markup:
    return Markup(highlight(diff, DiffLexer(), _FORMATTER))  # Pygments escapes the text


def stylesheet() -> str:
    """The CSS for highlighted blocks (a light theme)."""
    return str(HtmlFormatter(style="friendly").get_style_defs(".hl"))  # type: ignore[no-untyped-call]
