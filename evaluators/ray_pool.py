"""The Ray evaluator: the local sandbox, run on the nodes of a Ray cluster.

Each evaluation slot is a Ray actor that holds a :class:`~evaluators.local.LocalEvaluator` with
one slot: the same sandbox (bubblewrap or process isolation, limits, a warm template, the whole
process tree killed at its limit) and the same trusted scorer in its own worker process, only
on whichever node Ray placed the actor. Candidates never run in the actor's process, and their
environment is built from scratch there as it is locally, so the variables the actor inherited
from the cluster (or, for a Ray started here, from this process) never reach them.

The problem folder travels with the actors (its files are put in Ray's object store once and
written to a private directory on each node), so the nodes need this package installed but no
shared file system. A call that is cancelled cancels its Ray task, which kills the candidate
before the cancellation goes on; an actor that dies (its node lost, or killed) is replaced and
the candidate run again once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from evaluators.local import LocalEvaluator
from evolve.config import EvaluatorConfig
from evolve.errors import UserError
from evolve.problem import Problem, load_problem, problem_file_paths
from evolve.records import EvalResult

__all__ = ["EvaluationWorker", "RayEvaluator", "problem_files", "sweep_dead_workers"]

#: Each worker's copy of the problem lives in ``<tmp>/<prefix><pid>-<random>``.
WORKER_DIR_PREFIX = "evolve-ray-"
#: A problem folder bigger than this is not shipped through the object store.
MAX_PROBLEM_BYTES = 64 * 1024 * 1024
#: How long a cancelled call waits for its Ray task to end (the candidate killed).
CANCEL_WAIT_S = 30.0


def problem_files(root: Path) -> dict[str, bytes]:
    """Every file of the problem folder (:func:`~evolve.problem.problem_file_paths`) by its
    relative path.

    Raises:
        UserError: the folder holds more than :data:`MAX_PROBLEM_BYTES`.
    """
    files: dict[str, bytes] = {}
    total = 0
    for path in problem_file_paths(root):
        data = path.read_bytes()
        total += len(data)
        if total > MAX_PROBLEM_BYTES:
            raise UserError(
                f"{root}: the problem folder holds more than {MAX_PROBLEM_BYTES >> 20} MB, too much "
                f"to send to every Ray worker (at {path.relative_to(root)}); keep large data elsewhere"
            )
        files[path.relative_to(root).as_posix()] = data
    return files


def sweep_dead_workers(tmp: Path) -> list[Path]:
    """Remove the problem copies of workers on this node that died without closing (a lost
    driver, a killed worker); the removed directories.

    Only directories of this user, named after a process that no longer exists, are touched
    (the workers sharing a temporary directory are assumed to share a PID namespace, as on one
    node).
    """
    removed = []
    for path in tmp.glob(f"{WORKER_DIR_PREFIX}*-*"):
        pid = path.name[len(WORKER_DIR_PREFIX):].split("-", 1)[0]
        try:
            if not pid.isdigit() or path.is_symlink() or path.stat().st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        except OSError:  # alive under another user (EPERM), or the directory went away
            continue
    return removed


class EvaluationWorker:
    """One evaluation slot on a node (made a Ray actor by :class:`RayEvaluator`): the problem
    written to a private directory, and a one-slot local evaluator for it."""

    def __init__(self, files: dict[str, bytes], config: EvaluatorConfig) -> None:
        sweep_dead_workers(Path(tempfile.gettempdir()))
        self._dir = Path(tempfile.mkdtemp(prefix=f"{WORKER_DIR_PREFIX}{os.getpid()}-"))
        root = self._dir / "problem"
        for rel, data in files.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        self._evaluator = LocalEvaluator(load_problem(root), config)

    def ready(self) -> bool:
        return True

    async def evaluate(self, code: str) -> EvalResult:
        return await self._evaluator.evaluate(code)

    async def close(self) -> None:
        try:
            await self._evaluator.aclose()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)


class RayEvaluator:
    """Evaluate candidates for one problem on a Ray cluster, ``config.concurrency`` at a time.

    Ray is connected to (or, with no ``address``, started on this machine) and the actors are
    made on first use; :meth:`aclose` ends them, and Ray too if this evaluator started it.
    """

    def __init__(self, problem: Problem, config: EvaluatorConfig) -> None:
        self._problem = problem
        self._config = config
        self._size = config.resolved_concurrency()
        self._idle: asyncio.Queue[Any] = asyncio.Queue()
        self._actors: list[Any] = []
        self._started = False
        self._start_lock = asyncio.Lock()
        self._owns_ray = False
        self._ray: Any = None
        self._remote: Any = None
        self._files_ref: Any = None

    async def evaluate(self, code: str) -> EvalResult:
        """Run and score one candidate on some node; never raises for anything it does.

        Raises:
            UserError: Ray is missing or cannot be reached, or a worker cannot load the problem.
            RuntimeError: a worker died twice in a row evaluating this candidate.
        """
        await self._start()
        actor = await self._idle.get()
        try:
            for attempt in (1, 2):
                ref = actor.evaluate.remote(code)
                try:
                    result: EvalResult = await ref
                    return result
                except asyncio.CancelledError:
                    await self._cancel(ref)
                    raise
                except self._ray.exceptions.RayActorError as exc:
                    actor = await self._replace(actor)
                    if attempt == 2:
                        raise RuntimeError(f"evaluator=ray: a worker died twice evaluating one candidate: {exc}") from exc
                except self._ray.exceptions.RayTaskError as exc:
                    # The local evaluator raised on the node (the problem's scorer cannot load, the
                    # sandbox the config demands is missing there): that error, not Ray's wrapping.
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, UserError):
                        raise cause from None
                    raise
            raise AssertionError("unreachable")
        finally:
            self._idle.put_nowait(actor)

    async def aclose(self) -> None:
        """End every actor (each kills what it still runs), then Ray if this evaluator started it."""
        if not self._started:
            return
        with contextlib.suppress(Exception):
            await asyncio.gather(*(a.close.remote() for a in self._actors), return_exceptions=True)
        await self._abandon()
        self._idle = asyncio.Queue()  # a later evaluate starts afresh
        self._started = False

    # -- internals ------------------------------------------------------------------------------
    async def _start(self) -> None:
        if self._started:
            return
        async with self._start_lock:
            if self._started:
                return
            ray = _import_ray()
            settings = self._config.ray
            if not ray.is_initialized():
                try:
                    await asyncio.to_thread(_init_ray, ray, settings.address, settings.namespace)
                except Exception as exc:  # ConnectionError, RuntimeError, ValueError by cause
                    where = settings.address or "a new Ray instance on this machine"
                    raise UserError(f"evaluator.ray.address: cannot start or reach Ray ({where}): {exc}") from exc
                self._owns_ray = True
            self._ray = ray
            need = self._size * settings.cpus_per_evaluation
            have = float(ray.cluster_resources().get("CPU", 0.0))
            if need > have and self._owns_ray:  # a cluster may scale up; a Ray started here cannot
                await self._abandon()
                raise UserError(
                    f"evaluator.concurrency: {self._size} slots of {settings.cpus_per_evaluation:g} CPU "
                    f"(evaluator.ray.cpus_per_evaluation) need {need:g} CPUs; this machine's Ray has {have:g}"
                )
            self._remote = ray.remote(EvaluationWorker)
            self._files_ref = ray.put(problem_files(self._problem.root))
            self._actors = [self._new_actor() for _ in range(self._size)]
            try:
                async with asyncio.timeout(settings.start_timeout_s):
                    await asyncio.gather(*(a.ready.remote() for a in self._actors))
            except TimeoutError:
                await self._abandon()
                raise UserError(
                    f"evaluator.ray.start_timeout_s: the cluster did not place {self._size} workers of "
                    f"{settings.cpus_per_evaluation:g} CPU within {settings.start_timeout_s:g} s "
                    f"(it has {have:g} CPUs); lower evaluator.concurrency or add nodes"
                ) from None
            except ray.exceptions.RayActorError as exc:
                await self._abandon()
                raise UserError(f"evaluator=ray: a worker could not load problem {self._problem.name}: {exc}") from exc
            for actor in self._actors:
                self._idle.put_nowait(actor)
            self._started = True

    def _new_actor(self) -> Any:
        local = self._config.model_copy(update={"backend": "local", "concurrency": 1})
        return self._remote.options(num_cpus=self._config.ray.cpus_per_evaluation, max_restarts=0).remote(
            self._files_ref, local
        )

    async def _replace(self, dead: Any) -> Any:
        fresh = self._new_actor()
        self._actors = [fresh if a is dead else a for a in self._actors]
        with contextlib.suppress(Exception):
            self._ray.kill(dead)
        await fresh.ready.remote()
        return fresh

    async def _cancel(self, ref: Any) -> None:
        """Cancel the Ray task and wait (bounded) until it has ended: the actor's evaluate is
        cancelled, which kills the candidate's process tree."""
        self._ray.cancel(ref)
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(asyncio.wrap_future(ref.future()), CANCEL_WAIT_S)

    async def _abandon(self) -> None:
        """Kill every worker, and stop Ray if this evaluator started it."""
        for actor in self._actors:
            with contextlib.suppress(Exception):
                self._ray.kill(actor)
        self._actors.clear()
        if self._owns_ray:
            await asyncio.to_thread(self._ray.shutdown)
            self._owns_ray = False


class _NoSigtermNotice(logging.Filter):
    """Drops Ray's notice that it set no SIGTERM handler: it is started off the main thread on
    purpose, so that it neither blocks the event loop nor replaces this process's handling of
    SIGTERM with its own ``sys.exit``."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "SIGTERM handler is not set" not in record.getMessage()


def _init_ray(ray: Any, address: str | None, namespace: str) -> None:
    """``ray.init`` (blocking: run it in a thread). A Ray started here serves this run only, so
    without a dashboard; Ray binds its ports on every interface, and its clusters require a
    token (``~/.ray/auth_token``)."""
    here = {"include_dashboard": False} if address is None else {}
    notice = _NoSigtermNotice()
    worker_log = logging.getLogger("ray._private.worker")
    worker_log.addFilter(notice)
    try:
        ray.init(address=address, namespace=namespace, log_to_driver=False, configure_logging=False, **here)
    finally:
        worker_log.removeFilter(notice)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise UserError("evaluator=ray needs Ray: pip install 'evolve[ray]'") from exc
    return ray
