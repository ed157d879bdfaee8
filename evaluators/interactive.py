"""Interactive evaluation: a candidate plays an episode against a trusted environment.

For a problem with ``interactive: true`` (see :mod:`evolve.interactive`), each run gets a fresh
``socketpair``. The environment's end goes to a persistent trusted worker
(``episode_host.py``, one per evaluation slot, started lazily, killed at its timeout), which
plays the episode with the problem's environment function; the candidate's end goes into the
sandbox with the run request, where the supervisor hands it to the candidate as fd
``CHANNEL_FD`` and closes its own copy. The candidate runs exactly as any other: same
confinement, limits and kill of its whole tree.

The two sides end each other: when the run ends, this side's copy of the candidate's end is
closed, so the environment reads end of file at its next question; when the episode ends, the
worker closes the environment's end, so the candidate reads end of file, and a candidate still
running ``LINGER_S`` later is killed. A run that fails (exception, timeout, memory) while the
environment is waiting on it is reported as that failure; otherwise (the run returned, or the
environment had already finished or refused an answer) the environment's verdict is the result.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import json
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from evaluators.outcome import RunOutcome
from evaluators.scorer import ScoreOutcome, verdict
from evaluators.workers import Worker, WorkerPool
from evolve.records import Status

HOST = Path(__file__).resolve().parent / "episode_host.py"
#: How long a candidate may run on once its episode has ended before it is killed.
LINGER_S = 1.0
#: How long past its wall-time limit a run may take to end (its tree killed, its pipes read).
RUN_GRACE_S = 5.0
_REPLY_LIMIT = 1 << 20


class _Worker(Worker):
    """One environment worker process and its control socket."""

    def __init__(self, proc: asyncio.subprocess.Process, control: socket.socket) -> None:
        super().__init__(proc)
        self.control = control

    async def receive(self) -> dict[str, Any]:
        data = await asyncio.get_running_loop().sock_recv(self.control, _REPLY_LIMIT)
        if not data:
            raise ConnectionError("the environment worker died")
        reply: dict[str, Any] = json.loads(data)
        return reply

    def send(self, request: dict[str, Any], channel: int) -> None:
        fds = array.array("i", [channel])
        self.control.sendmsg(
            [json.dumps(request).encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)]
        )

    def kill(self) -> None:
        super().kill()
        self.control.close()


class EpisodePool(WorkerPool[_Worker]):
    """Play episodes with up to ``size`` persistent environment workers (see
    :class:`WorkerPool` for the arguments); ``timeout_s`` bounds loading the environment, and
    finishing an episode once the candidate's run is over."""

    loads = "environment"

    async def _launch(self) -> _Worker:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            proc = await asyncio.create_subprocess_exec(
                *self._host_argv(HOST),
                str(theirs.fileno()),
                stdin=asyncio.subprocess.DEVNULL,
                cwd=self._path.parent,
                env=self._env,
                start_new_session=True,
                pass_fds=(theirs.fileno(),),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        return _Worker(proc, ours)

    async def _hello(self, worker: _Worker) -> dict[str, Any]:
        return await worker.receive()

    async def play(
        self,
        run: Callable[[int], Awaitable[RunOutcome]],
        stage: str | None,
        entry_kwargs: dict[str, Any],
        run_timeout_s: float,
    ) -> tuple[RunOutcome, ScoreOutcome]:
        """Run the candidate (``run(fd)``, ``fd`` its end of the channel, wall-time limit
        ``run_timeout_s``) against one episode.

        Returns the run's outcome and the environment's verdict; raises only
        :class:`ScorerLoadError` (and cancellation, after killing both sides).
        """
        env_end, candidate_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        async with self._slots:
            try:
                worker = await self._start_episode(
                    {"stage": stage, "entry_kwargs": entry_kwargs}, env_end.fileno()
                )
            except BaseException:
                candidate_end.close()
                raise
            finally:
                env_end.close()
            timeout = run_timeout_s + RUN_GRACE_S + self._timeout_s
            episode = asyncio.ensure_future(self._episode(worker, timeout))
            try:
                outcome = await self._run(run, candidate_end, episode)
                verdict, program_gone = await episode
            except BaseException:
                episode.cancel()
                with contextlib.suppress(BaseException):
                    await episode
                raise
        if outcome.status is not Status.EVALUATED and not program_gone:
            # The environment decided first (it finished, or refused an answer); how the
            # candidate ended after that (a broken pipe, say) does not change its verdict.
            outcome = RunOutcome(Status.EVALUATED, output_text=outcome.output_text)
        return outcome, verdict

    async def _start_episode(self, request: dict[str, Any], channel: int) -> _Worker:
        """Hand the episode to an idle worker, or to a new one when none is idle or the idle one
        has died."""
        while self._idle:
            worker = self._idle.pop()
            try:
                worker.send(request, channel)
                return worker
            except OSError:
                self._discard(worker)
        worker = await self._spawn()
        worker.send(request, channel)
        return worker

    async def _run(
        self,
        run: Callable[[int], Awaitable[RunOutcome]],
        candidate_end: socket.socket,
        episode: asyncio.Future[tuple[ScoreOutcome, bool]],
    ) -> RunOutcome:
        """The candidate's run; once its episode has ended, a candidate still running
        ``LINGER_S`` later is killed (and counts as having ended normally). The candidate's end
        is closed here when the run is over, so the environment cannot wait on it."""
        running = asyncio.ensure_future(run(candidate_end.fileno()))
        try:
            either: set[asyncio.Future[Any]] = {running, episode}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if not running.done():
                done, _ = await asyncio.wait({running}, timeout=LINGER_S)
                if not done:
                    running.cancel()  # kills the candidate's tree
                    with contextlib.suppress(asyncio.CancelledError):
                        await running
                    return RunOutcome(Status.EVALUATED)
            return running.result()
        except BaseException:
            running.cancel()
            with contextlib.suppress(BaseException):
                await running
            raise
        finally:
            candidate_end.close()

    async def _episode(self, worker: _Worker, timeout_s: float) -> tuple[ScoreOutcome, bool]:
        """The environment's verdict, and whether the episode ended because the candidate went
        away (when it did not, the environment decided before the candidate's run ended)."""
        try:
            async with asyncio.timeout(timeout_s):
                reply = await worker.receive()
        except TimeoutError:
            self._discard(worker)
            message = f"the environment took longer than {timeout_s:g} s"
            return ScoreOutcome(Status.BAD_OUTPUT, message=message), True
        except (ConnectionError, OSError, ValueError) as exc:
            self._discard(worker)
            return ScoreOutcome(Status.BAD_OUTPUT, message=f"the environment failed: {exc}"), True
        except BaseException:
            self._discard(worker)
            raise
        self._idle.append(worker)
        return verdict(reply, self._primary), bool(reply.get("program_gone", True))
