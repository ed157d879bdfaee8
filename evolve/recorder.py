"""The run's writes to its database, from the event loop, never lost to a cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from evolve.database import Database
from evolve.errors import UserError, first_error, one_line
from evolve.outcomes import RunHalted
from evolve.records import LLMReply, Message, Program, RetriedFailure

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """A finished model call that is not written yet."""

    messages: Sequence[Message]
    mode: str
    reply: LLMReply | None = None
    error: tuple[str, str] | None = None
    retried: tuple[RetriedFailure, ...] = ()  # failed attempts retried before it ended


class Recorder:
    """Writes one run's programs, model calls, migrations and status."""

    def __init__(self, db: Database, run_id: str, model_name: str) -> None:
        self.db = db
        self.run_id = run_id
        self._model = model_name
        self._pool: ThreadPoolExecutor | None = None

    def open(self) -> None:
        """Start the writer thread a remote database needs (see :meth:`call`)."""
        if not self.db.local_writes and self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evolve-db")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    @contextlib.contextmanager
    def session(self, interrupted: Callable[[], str]) -> Iterator[None]:
        """The writer open for the run's life, and how it ended recorded if by an exception:
        ``interrupted`` (with the reason ``interrupted()`` gives) on a cancellation or Ctrl-C,
        ``stopped`` on a halt or a user error (resumable), else ``failed``. An exception group
        (a task's failure) is raised as its first error."""
        self.open()
        try:
            yield
        except (asyncio.CancelledError, KeyboardInterrupt):
            self.end("interrupted", interrupted())
            raise
        except BaseException as exc:
            err = first_error(exc)
            self.end("stopped" if isinstance(err, RunHalted | UserError) else "failed", str(err))
            if err is not exc:
                raise err from exc
            raise
        finally:
            self.close()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a database call; once asked for, a write happens even if the task that asked is
        cancelled (a finished evaluation is never dropped).

        A local SQLite write (WAL, no fsync per commit) takes a few hundred microseconds, less
        than handing it to a thread and back on a busy machine, so it runs inline, where nothing
        can cancel it halfway. Other databases are a network round trip away: those calls run on
        the writer thread, shielded from cancellation.
        """
        if self._pool is None:
            return fn(*args)
        loop = asyncio.get_running_loop()
        return await asyncio.shield(loop.run_in_executor(self._pool, partial(fn, *args)))

    async def program(self, program: Program, call: Call | None = None) -> None:
        """Write a new program, in one transaction with the model call it was made from: one
        write instead of two on every iteration's path."""
        if call is None:
            await self.call(self.db.add_program, program)
            return
        await self.call(
            partial(self.db.add_llm_call, self.run_id, program.iteration, call.messages, call.reply,
                    model=self._model, mode=call.mode, error=call.error, program=program,
                    retried=call.retried)
        )

    async def failed_call(self, iteration: int, call: Call) -> None:
        """Write a model call that made no program (a context-length retry, an auth error)."""
        await self.call(
            partial(self.db.add_llm_call, self.run_id, iteration, call.messages, None,
                    model=self._model, mode=call.mode, error=call.error, retried=call.retried)
        )

    async def finished(self, program: Program, *, stdout_tail: str, score: float | None) -> None:
        await self.call(partial(self.db.finish_program, program, stdout_tail=stdout_tail, score=score))

    async def migrations(self, moves: Sequence[tuple[int, str, int, int]]) -> None:
        await self.call(self.db.add_migrations, self.run_id, moves)

    async def status(self, status: str, reason: str) -> None:
        await self.call(self.db.set_run_status, self.run_id, status, reason)

    def end(self, status: str, reason: str) -> None:
        """Record how the run ended, if the database still takes writes (a full disk may not:
        then the lease, no longer renewed, shows the run as not alive)."""
        try:
            self.db.set_run_status(self.run_id, status, reason)
        except Exception as exc:
            log.warning("could not record the run as %s: %s", status, one_line(exc, last=True))


__all__ = ["Call", "Recorder"]
