"""The web UI over the run database: ``evolve ui`` (pages, a JSON API, live updates)."""

from evolve.ui.app import build_app
from evolve.ui.catalog import RunCatalog

__all__ = ["RunCatalog", "build_app"]
