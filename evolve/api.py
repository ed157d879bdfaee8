"""The Python API, for notebooks and scripts: start a run, and read one.

    import evolve
    summary = evolve.run("circle_packing", overrides=["max_iterations=50"])
    view = evolve.open_run(f"runs/{summary.run_id}")
    view.best.code, view.lineage(), view.to_dataframe()

:func:`run` works inside a running event loop too (Jupyter's): it then runs the discovery loop
on a thread of its own. A problem's scorer may be given as a Python function (see
:func:`scorer_problem`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import shutil
import textwrap
import threading
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from evolve.errors import UserError

if TYPE_CHECKING:
    from evolve.controller import Progress, RunSummary
    from evolve.problem import Problem
    from evolve.records import Program
    from evolve.runread import Reader, RunStatus

__all__ = ["RunView", "arun", "open_run", "run", "scorer_problem"]

log = logging.getLogger(__name__)

Scorer = Callable[..., Any]


def run(
    problem: str | Path,
    overrides: Sequence[str] = (),
    *,
    scorer: Scorer | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> RunSummary:
    """Run ``problem`` (a name under ``problems/`` or a folder) with Hydra-style ``overrides``
    (``["max_iterations=50", "llm=openai"]``) to its end; the run's summary.

    Args:
        scorer: score outputs with this function instead of the problem's ``scorer.py`` (called
            as the file's function is: ``fn(output)``, returning a dict of metrics).
        on_progress: called with a snapshot after each applied iteration.

    Raises:
        UserError: a bad override, problem or scorer (the message names it).
    """
    coro = arun(problem, overrides, scorer=scorer, on_progress=on_progress)
    try:
        asyncio.get_running_loop()
        in_loop = True
    except RuntimeError:
        in_loop = False
    if in_loop:  # a loop runs here already (Jupyter's): ours runs on a thread of its own
        return _on_own_thread(coro)
    return asyncio.run(coro)


def _on_own_thread(coro: Any) -> RunSummary:
    result: list[RunSummary] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:  # handed to the caller's thread as it was raised
            error.append(exc)

    thread = threading.Thread(target=target, name="evolve-run")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


async def arun(
    problem: str | Path,
    overrides: Sequence[str] = (),
    *,
    scorer: Scorer | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> RunSummary:
    """:func:`run`, awaitable: the discovery loop on the caller's event loop."""
    from evolve import app
    from evolve.overrides import concurrency_note

    args = [f"problem={problem}", "progress=false", *overrides]
    config = app.compose_config(args)
    if scorer is not None:
        folder = scorer_problem(config.problem, scorer, Path(config.runs_dir) / "_scorers")
        config = config.model_copy(update={"problem": str(folder)})
    note = concurrency_note(config)
    if note:
        log.warning("%s", note)
    opened = app.start_run(config, overrides=list(args))
    return await app.run_held(opened, on_progress=on_progress)


def scorer_problem(problem: str | Path, scorer: Scorer, under: Path) -> Path:
    """A copy of ``problem``'s folder (under ``under``) whose scorer calls ``scorer``.

    The scorer runs in its own process, as every scorer does, so the function must be one that
    process can load: a function of an importable module is imported from it; a function defined
    in a notebook or a script (``__main__``) is copied by its source, with the modules it refers
    to imported under the same names. Lambdas, closures and methods are refused.
    """
    from evolve.problem import load_problem

    if not isinstance(scorer, types.FunctionType) or scorer.__name__ == "<lambda>" or "<locals>" in scorer.__qualname__:
        raise UserError("scorer: give a function defined at the top level of a module or notebook (not a lambda, "
                        "closure or method): it runs in a process of its own")
    source = _scorer_source(scorer)
    original = load_problem(problem)
    under.mkdir(parents=True, exist_ok=True)
    import hashlib

    digest = hashlib.sha256((str(original.root) + source).encode()).hexdigest()[:12]
    folder = under / f"{original.name}-{digest}"
    if not folder.is_dir():
        staging = under / f".{folder.name}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(original.root, staging, ignore=shutil.ignore_patterns("__pycache__", ".*"))
        (staging / "_python_scorer.py").write_text(source)
        spec_path = staging / "problem.yaml"
        raw = yaml.safe_load(spec_path.read_text())
        raw["scorer"] = "_python_scorer.py:score"
        spec_path.write_text(yaml.safe_dump(raw, sort_keys=False))
        staging.rename(folder)
    return folder.resolve()


def _scorer_source(fn: types.FunctionType) -> str:
    module = fn.__module__
    if module not in ("__main__", "builtins") and not module.startswith("__"):
        return f"from {module} import {fn.__name__} as _scorer\n\n\ndef score(*args, **kwargs):\n    return _scorer(*args, **kwargs)\n"
    try:
        body = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as exc:
        raise UserError(f"scorer: the source of {fn.__name__} cannot be found ({exc})") from exc
    imports = []
    for name in sorted(_global_names(fn.__code__)):
        value = fn.__globals__.get(name)
        if isinstance(value, types.ModuleType):
            imports.append(f"import {value.__name__} as {name}" if value.__name__ != name else f"import {name}")
    alias = "" if fn.__name__ == "score" else f"\n\nscore = {fn.__name__}\n"
    return "\n".join(imports) + "\n\n\n" + body + alias


def _global_names(code: types.CodeType) -> set[str]:
    """The global names a function's code refers to, its comprehensions' and inner functions'
    included (each is a code object of its own)."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def open_run(path_or_url: str | Path, run: str | None = None) -> RunView:
    """A read-only view of a run: its folder (or a name under ``runs/``), or a database URL
    (``postgresql+psycopg://...``, ``sqlite:///...``) with ``run`` naming the run (optional when
    the database holds one). Nothing it does writes to the database."""
    from evolve.locate import locate_run
    from evolve.runread import open_reader

    text = str(path_or_url)
    if "://" in text:
        db = open_reader(text)
        run_id = run
        if run_id is None:
            ids = [r.id for r in db.list_runs()]
            if len(ids) != 1:
                db.close()
                raise UserError(f"open_run: the database holds {len(ids)} runs; name one with run= ({', '.join(ids)})")
            run_id = ids[0]
        return RunView(db, run_id)
    loc = locate_run(text)
    return RunView(open_reader(loc.db_url), run or loc.run_id)


class RunView:
    """One run, read from its database: the best program, all programs, lineages, model calls."""

    def __init__(self, db: Reader, run_id: str) -> None:
        self._db = db
        self.run_id = run_id

    @property
    def problem(self) -> Problem:
        from evolve.runread import stored_problem

        return stored_problem(self._db, self.run_id)

    @property
    def best(self) -> Program | None:
        """The best evaluated program, or None if there is none yet."""
        return self._db.best_program(self.run_id, maximize=self.problem.maximize)

    def programs(self) -> list[Program]:
        """Every program, in iteration order."""
        return self._db.programs(self.run_id, with_inspirations=True)

    def program(self, which: str | int) -> Program:
        """A program by id, id prefix or iteration number."""
        from evolve.runread import find_program

        return find_program(self._db, self.run_id, str(which))

    def lineage(self, program_id: str | None = None) -> list[Program]:
        """The chain initial -> ``program_id`` (default: the best), oldest first."""
        from evolve.runread import lineage_of

        return lineage_of(self._db, self.run_id, program_id)[0]

    def calls(self) -> list[dict[str, Any]]:
        """Every model call: iteration, model, prompt, reply, tokens, cost, latency, error."""
        return self._db.llm_calls(self.run_id)

    def status(self) -> RunStatus:
        from evolve.runread import run_status

        return run_status(self._db, self.run_id)

    def to_dataframe(self) -> Any:
        """One row per program (as ``evolve export``), as a pandas DataFrame; metrics become
        ``metric.NAME`` columns."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise UserError("to_dataframe needs pandas: pip install pandas") from exc
        from evolve.runread import export_rows

        rows = export_rows(self._db, self.run_id)
        flat = [{**{k: v for k, v in r.items() if k not in ("metrics", "features")},
                 **{f"metric.{k}": v for k, v in r["metrics"].items()},
                 **{f"feature.{k}": v for k, v in r["features"].items()}} for r in rows]
        return pd.DataFrame(flat)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RunView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
