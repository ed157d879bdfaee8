"""evolve: LLM-driven evolutionary algorithm discovery.

The package's parts, in data-flow order: ``problem`` (problem.yaml), ``search`` (the ask/tell
strategies: MAP-Elites islands over ``archive`` and ``selection``, greedy, random, pareto),
``prompts``, ``llm`` (models), ``diffs``, ``proposals``, ``evaluations``, ``budgets``,
``recorder``, ``controller`` (the scheduler), ``database`` (the source of truth), ``runread`` and
``report`` (reading a run), ``cli``. The sandboxed evaluation backends live in the sibling package
``evaluators``. ``app`` is the one place that wires them together.

The Python API (:mod:`evolve.api`): :func:`run`, :func:`arun`, :func:`open_run`. They are loaded
on first use, so that importing the package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evolve.errors import UserError
from evolve.records import EvalResult, LLMReply, LLMRequest, Program, Status
from evolve.scoring import Rejected

if TYPE_CHECKING:
    from evolve.api import RunView, arun, open_run, run
    from evolve.controller import RunSummary

__version__ = "0.1.0"

__all__ = [
    "EvalResult", "LLMReply", "LLMRequest", "Program", "Rejected", "RunSummary", "RunView", "Status",
    "UserError", "__version__", "arun", "open_run", "run",
]

_LAZY = {"run": "evolve.api", "arun": "evolve.api", "open_run": "evolve.api", "RunView": "evolve.api",
         "RunSummary": "evolve.controller"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'evolve' has no attribute {name!r}")
