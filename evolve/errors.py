"""Exceptions that carry a message meant for the user."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (a flag, a config field, a problem file).

    The CLI prints the message as one line and exits with code 2.
    """
