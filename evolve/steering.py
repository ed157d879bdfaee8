"""Steering a live run: the commands ``evolve ctl`` and the web UI write to the run's database
(pause, resume, stop, a new budget, a program to inject), polled and acted on by its controller.

The database carries them, so they reach a run on another machine through PostgreSQL; each is
marked applied with its outcome, which is the run's history of commands.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from evolve.database.commands import Command, CommandLog
from evolve.errors import one_line
from evolve.recorder import Recorder

log = logging.getLogger(__name__)

#: How often a live run looks for new commands (one cheap indexed query).
POLL_S = 1.0


async def follow_commands(
    recorder: Recorder, commands: CommandLog, act: Callable[[Command], str], every_s: float = POLL_S
) -> None:
    """Apply the run's new commands in the order they were sent, every ``every_s``; each gets
    its outcome (what ``act`` did, or why it was refused) recorded."""
    while True:
        try:
            pending = await recorder.call(commands.pending, recorder.run_id)
        except Exception as exc:  # a lost connection: the next poll tries again
            log.warning("could not read the run's commands: %s", one_line(exc))
            pending = []
        for number, command in pending:
            try:
                outcome = act(command)
            except ValueError as exc:
                outcome = f"refused: {exc}"
            await recorder.call(commands.mark_applied, number, outcome)
        await asyncio.sleep(every_s)


__all__ = ["POLL_S", "follow_commands"]
