"""Search strategies behind one ask/tell protocol (see :mod:`evolve.search.protocol`)."""

from evolve.search.baselines import Greedy, RandomSearch
from evolve.search.factory import BUILTIN, build_strategy
from evolve.search.history import History
from evolve.search.map_elites import MapElites
from evolve.search.pareto import Pareto
from evolve.search.protocol import Applied, SearchStrategy, Selection, StrategyContext

__all__ = [
    "BUILTIN",
    "Applied",
    "Greedy",
    "History",
    "MapElites",
    "Pareto",
    "RandomSearch",
    "SearchStrategy",
    "Selection",
    "StrategyContext",
    "build_strategy",
]
