"""``evolve init``: a new problem folder that runs as created."""

from __future__ import annotations

import re
from pathlib import Path

from evolve.errors import UserError

TEMPLATE = Path(__file__).resolve().parent / "scaffold_template"
#: An interactive problem: a trusted environment plays an episode with the candidate.
INTERACTIVE_TEMPLATE = Path(__file__).resolve().parent / "scaffold_template_interactive"


def scaffold_problem(directory: Path, interactive: bool = False) -> None:
    """Write problem.yaml, initial.py and scorer.py into a new (or empty) folder; with
    ``interactive``, problem.yaml, initial.py and environment.py (see :mod:`evolve.interactive`)."""
    if directory.exists() and any(directory.iterdir()):
        raise UserError(f"DIR: {directory} exists and is not empty")
    name = re.sub(r"[^A-Za-z0-9_]+", "_", directory.resolve().name).strip("_") or "my_problem"
    directory.mkdir(parents=True, exist_ok=True)
    for src in sorted((INTERACTIVE_TEMPLATE if interactive else TEMPLATE).iterdir()):
        if src.is_file():
            (directory / src.name).write_text(src.read_text().replace("PROBLEM_NAME", name))
