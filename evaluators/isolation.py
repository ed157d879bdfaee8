"""Choose and describe the sandbox: bubblewrap where it works, plain process isolation otherwise.

``isolation: auto`` uses bubblewrap when a real probe run succeeds and otherwise falls back to
process isolation (rlimits, a fresh environment and working directory, process-group kill),
logging the reason once per evaluator. ``isolation: bwrap`` fails instead of falling back.

Under bubblewrap the candidate gets no network, a new PID namespace (every descendant dies with
the sandbox), a read-only root file system with a private ``/tmp``, and a writable working
directory; the problem folder (scorer, hidden data) and the parent's home are replaced by empty
file systems. Directories that the interpreter needs but that an unprivileged uid could not
traverse (a Python installed under ``/root``) are bound back on top of those empty file systems,
which is what lets the candidate drop to a sandbox uid.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import stat
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from evolve.errors import UserError

logger = logging.getLogger(__name__)

RUNNER_DIR = Path(__file__).resolve().parent
_PROBE_TIMEOUT_S = 20.0
_PATHS_SCRIPT = (
    "import sys, json; print(json.dumps([sys.prefix, sys.base_prefix, sys.exec_prefix, "
    "sys.executable, *sys.path]))"
)


class SandboxUnavailable(UserError):
    """The configuration demands a sandbox this machine cannot provide."""


@dataclass(frozen=True)
class Isolation:
    """The sandbox an evaluator will use.

    Attributes:
        kind: ``"bwrap"`` or ``"process"``.
        needed: host paths the interpreter must still see inside bubblewrap.
        reason: why bubblewrap is not used (empty when it is).
    """

    kind: str
    needed: tuple[Path, ...] = ()
    reason: str = ""

    def prefix(self, slot_dir: Path, hidden: Iterable[Path]) -> list[str]:
        """The argv that wraps the runner (empty for process isolation)."""
        if self.kind != "bwrap":
            return []
        return bwrap_argv(slot_dir, hidden, self.needed)


def _traversable_by_others(path: Path) -> bool:
    try:
        return bool(os.stat(path).st_mode & stat.S_IXOTH)
    except OSError:
        return False


def _masks(needed: Sequence[Path], hidden: Iterable[Path]) -> list[Path]:
    """Directories to replace with an empty tmpfs: ``hidden`` plus untraversable ancestors."""
    masks = {p for p in hidden if p != Path("/")}
    for path in needed:
        for parent in reversed(path.parents):
            if parent != Path("/") and not _traversable_by_others(parent):
                masks.add(parent)
                break
    top = sorted(masks, key=lambda p: len(p.parts))
    return [m for i, m in enumerate(top) if not any(m.is_relative_to(o) for o in top[:i])]


def bwrap_argv(slot_dir: Path, hidden: Iterable[Path], needed: Sequence[Path]) -> list[str]:
    """bubblewrap arguments for one sandbox whose writable directory is ``slot_dir``."""
    argv = [
        "bwrap",
        "--die-with-parent",
        "--new-session",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--tmpfs", "/tmp",
        "--tmpfs", "/dev/shm",
    ]  # fmt: skip
    hidden = list(hidden)
    # A hidden folder that holds something the interpreter needs is masked first and the
    # needed paths bound back on top; any other hidden folder is masked last, so that no bind
    # (an editable checkout on sys.path, a venv) can make it visible again.
    early = [h for h in hidden if any(n.is_relative_to(h) for n in needed)]
    late = [h for h in hidden if h not in early and h != Path("/")]
    masks = _masks(needed, early)
    for mask in masks:
        argv += ["--tmpfs", str(mask)]
    # /tmp and /dev/shm are private tmpfs too: an interpreter or checkout under them
    # (a venv in /tmp, say) is mounted back like any other needed path
    covers = [*masks, Path("/tmp"), Path("/dev/shm")]
    made: set[Path] = set()
    for path in needed:
        covering = [m for m in covers if path.is_relative_to(m)]
        if not covering or not path.exists():
            continue
        mask = covering[0]
        # bubblewrap creates missing parents as 0700; make them traversable for the sandbox uid
        for parent in reversed(path.parents):
            if parent.is_relative_to(mask) and parent != mask and parent not in made:
                argv += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
        argv += ["--ro-bind", str(path), str(path)]
    for path in late:
        argv += ["--tmpfs", str(path)]
    argv += ["--bind", str(slot_dir), str(slot_dir), "--chdir", str(slot_dir)]
    return argv


async def _output_of(argv: Sequence[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env if env is not None else {"PATH": "/usr/local/bin:/usr/bin:/bin"},
        start_new_session=True,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), _PROBE_TIMEOUT_S)
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(errors="replace").strip()


async def interpreter_paths(python: str) -> tuple[Path, ...]:
    """Every directory the candidate interpreter reads at start-up, resolved."""
    code, out = await _output_of([python, "-I", "-c", _PATHS_SCRIPT])
    if code != 0:
        raise UserError(f"the candidate interpreter {python!r} does not start: {out}")
    return _existing_dirs(json.loads(out))


def _existing_dirs(entries: Iterable[str]) -> tuple[Path, ...]:
    found: set[Path] = {RUNNER_DIR}
    for entry in entries:
        if entry:
            path = Path(entry).resolve()
            found.add(path.parent if path.is_file() else path)
    return tuple(sorted(p for p in found if p.exists()))


async def detect(requested: str, python: str) -> Isolation:
    """Probe the machine and return the isolation to use for ``requested`` (config value).

    Raises:
        SandboxUnavailable: ``requested`` is ``"bwrap"`` and bubblewrap does not work here.
    """
    needed = await interpreter_paths(python)
    if requested == "process":
        return Isolation("process", needed, reason="isolation: process was configured")
    reason = await _bwrap_refusal(python, needed)
    if not reason:
        return Isolation("bwrap", needed)
    if requested == "bwrap":
        raise SandboxUnavailable(
            f"evaluator.isolation=bwrap but bubblewrap does not work: {reason}"
        )
    logger.warning(
        "bubblewrap is not usable (%s); candidates run with process isolation only: "
        "rlimits, a scrubbed environment and a fresh working directory, but with network "
        "access and a readable file system",
        reason,
    )
    return Isolation("process", needed, reason=reason)


async def _bwrap_refusal(python: str, needed: Sequence[Path]) -> str:
    """Why a bubblewrap sandbox cannot run the interpreter here ('' when it can)."""
    if shutil.which("bwrap") is None:
        return "the bwrap executable is not installed (apt-get install bubblewrap)"
    probe_dir = Path(os.environ.get("TMPDIR", "/tmp"))
    argv = [*bwrap_argv(probe_dir, (), needed), python, "-I", "-c", "pass"]
    code, out = await _output_of(argv)
    if code != 0:
        return f"a probe run failed with exit code {code}: {out[:300]}"
    return ""
