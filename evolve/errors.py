"""Exceptions that carry a message meant for the user."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (a flag, a config field, a problem file).

    The CLI prints the message as one line and exits with code 2.
    """


def one_line(exc: BaseException | str, *, last: bool = False, limit: int = 500) -> str:
    """An error as one line of text: its first line (``last``: its last, as for a traceback),
    cut at ``limit`` characters; the exception's type name when it has no text."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__ if isinstance(exc, BaseException) else ""
    line = lines[-1] if last else lines[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def first_error(exc: BaseException) -> BaseException:
    """The first leaf of an exception group (``asyncio.TaskGroup`` wraps a task's failure)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
