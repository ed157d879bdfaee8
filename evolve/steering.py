"""Steering a live run: the commands ``evolve ctl`` and the web UI write to the run's database
(pause, resume, stop, a new budget, a program to inject), polled for the run's controller by
:func:`follow_commands` and applied to it by :class:`Steering`.

The database carries them, so they reach a run on another machine through PostgreSQL; each is
marked applied with its outcome, which is the run's history of commands.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from evolve.codehash import code_hash
from evolve.config import RunConfig
from evolve.database.commands import Command, CommandLog
from evolve.errors import one_line
from evolve.proposals import program_id
from evolve.recorder import Recorder
from evolve.records import Program, Status

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


class Steerable(Protocol):
    """What a command may change in a live run: the controller, seen from here."""

    run_id: str
    config: RunConfig
    #: No new iteration starts while set; those in flight finish.
    paused: bool

    @property
    def applied(self) -> int:
        """Iterations told to the strategy so far (the initial program not counted)."""
        ...

    def schedule(self) -> None:
        """Start the iterations that may start now."""
        ...

    def stop(self, reason: str) -> None:
        """End the run cleanly (resumable) once the iterations in flight are cancelled."""
        ...

    def reconfigure(self, config: RunConfig, *, restart_clock: bool) -> None:
        """Run on with new limits (checked against what was spent)."""
        ...

    def claim_iteration(self) -> int:
        """The next iteration, taken for a program of the user's own.

        Raises:
            ValueError: none is free below ``max_iterations``.
        """
        ...

    def spawn(self, coro: Coroutine[Any, Any, None]) -> object:
        """Run ``coro`` as one of the run's tasks (closed unstarted once the run is ending)."""
        ...

    async def evaluate(self, program: Program) -> None:
        """Evaluate a recorded program and tell it to the strategy in its turn."""
        ...


class Steering:
    """Applies one command to a live run: the ``act`` that :func:`follow_commands` calls."""

    def __init__(self, run: Steerable, recorder: Recorder) -> None:
        self._run = run
        self._recorder = recorder

    def apply(self, command: Command) -> str:
        """Act on ``command``; returns the outcome recorded with it.

        Raises:
            ValueError: the command is refused (its message is recorded as the reason).
        """
        run = self._run
        if command.kind == "pause":
            run.paused = True
            return "paused: no new iteration starts; those in flight finish"
        if command.kind == "resume":
            was, run.paused = run.paused, False
            run.schedule()
            return "resumed" if was else "not paused: nothing to resume"
        if command.kind == "stop":
            run.stop("stopped by a command (evolve ctl)")
            return "stopping: the run ends when the iterations in flight are cancelled"
        if command.kind == "budget":
            return self._rebudget(command.args)
        return self._inject(str(command.args["code"]))

    def _rebudget(self, limits: dict[str, Any]) -> str:
        run, done = self._run, self._run.applied
        if limits.get("max_iterations", done) < done:
            raise ValueError(f"max_iterations {limits['max_iterations']} is below the {done} iterations done")
        config = run.config.model_copy(update=limits)
        # Stored with the run, so that a resume keeps the new limits.
        run.spawn(self._recorder.call(self._recorder.db.set_run_status, run.run_id, "running", None,
                                      config.model_dump(mode="json")))
        run.reconfigure(config, restart_clock="max_wall_time" in limits)
        return "budget now " + ", ".join(f"{k}={v}" for k, v in limits.items())

    def _inject(self, code: str) -> str:
        """A program of the user's own takes the next iteration: evaluated in the sandbox and told
        to the strategy like any child (no parent), so resume replays it like any other."""
        run = self._run
        i = run.claim_iteration()
        program = Program(
            id=program_id(run.run_id, i), run_id=run.run_id, iteration=i, parent_id=None,
            island=(i - 1) % run.config.search.islands, generation=0, code=code,
            code_hash=code_hash(code), status=Status.PENDING, mode="inject",
        )
        run.spawn(self._injected(program))
        return f"injected as iteration {i} (program {program.id})"

    async def _injected(self, program: Program) -> None:
        await self._recorder.program(program)
        await self._run.evaluate(program)


__all__ = ["POLL_S", "Steerable", "Steering", "follow_commands"]
