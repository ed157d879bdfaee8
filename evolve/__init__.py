"""evolve: LLM-driven evolutionary algorithm discovery.

The package's parts, in data-flow order: ``problem`` (problem.yaml), ``search`` (the ask/tell
strategies: MAP-Elites islands over ``archive`` and ``selection``, greedy, random, pareto),
``prompts``, ``llm`` (models), ``diffs``, ``proposals``, ``evaluations``, ``budgets``,
``recorder``, ``controller`` (the scheduler), ``database`` (the source of truth), ``report`` and
``cli``. The
sandboxed evaluation backends live in the sibling package ``evaluators``. ``app`` is the one
place that wires them together.
"""

from evolve.errors import UserError
from evolve.records import EvalResult, LLMReply, LLMRequest, Program, Status
from evolve.scoring import Rejected

__version__ = "0.1.0"

__all__ = ["EvalResult", "LLMReply", "LLMRequest", "Program", "Rejected", "Status", "UserError", "__version__"]
