"""The environment a candidate sees: built from scratch, never inherited.

Nothing of the parent's environment reaches a candidate unless the problem lists the variable in
``spec.env``; in particular no API key does. Thread counts of the usual numeric libraries are
pinned to one so that a candidate's speed does not depend on the machine's core count and its
address-space limit is not eaten by per-thread arenas.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

_BASE = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}


def candidate_env(
    workdir: Path, passthrough: Iterable[str], parent: Mapping[str, str]
) -> dict[str, str]:
    """The complete environment of one candidate process.

    Args:
        workdir: the candidate's fresh working directory; HOME and TMPDIR point inside it.
        passthrough: names the problem allows (``spec.env``); copied when the parent has them.
        parent: the parent's environment (``os.environ``), read only for ``passthrough``.
    """
    env = dict(_BASE)
    env["HOME"] = str(workdir)
    env["TMPDIR"] = str(workdir / "tmp")
    for name in passthrough:
        if name in parent:
            env[name] = parent[name]
    return env
