"""Build the strategy ``search.strategy`` names: a built-in, or a user's class by import path."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from evolve.config import BUILTIN_STRATEGIES
from evolve.errors import UserError
from evolve.search.baselines import Greedy, RandomSearch
from evolve.search.map_elites import MapElites
from evolve.search.pareto import Pareto
from evolve.search.protocol import SearchStrategy, StrategyContext

BUILTIN: dict[str, Callable[[StrategyContext], SearchStrategy]] = {
    "map_elites": MapElites,
    "greedy": Greedy,
    "random": RandomSearch,
    "pareto": Pareto,
}


assert tuple(BUILTIN) == BUILTIN_STRATEGIES, "evolve.config.BUILTIN_STRATEGIES is out of date"


def build_strategy(ctx: StrategyContext) -> SearchStrategy:
    """The strategy for ``ctx.search.strategy``.

    Raises:
        UserError: the import path does not load, or the object is not a strategy.
    """
    name = ctx.search.strategy
    factory = BUILTIN.get(name) or _import(name)
    strategy = factory(ctx)
    if not isinstance(strategy, SearchStrategy):
        raise UserError(
            f"search.strategy: '{name}' made a {type(strategy).__name__}, which lacks the "
            "SearchStrategy methods (ask, tell, best, front, coverage)"
        )
    return strategy


def _import(path: str) -> Callable[[StrategyContext], SearchStrategy]:
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise UserError(
            f"search.strategy: '{path}' is neither a built-in ({', '.join(sorted(BUILTIN))}) "
            "nor an import path 'package.module:ClassName'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"search.strategy: cannot import '{module_name}': {exc}") from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UserError(f"search.strategy: '{module_name}' has no class or function '{attr}'")
    return factory  # type: ignore[no-any-return]


__all__ = ["BUILTIN", "build_strategy"]
