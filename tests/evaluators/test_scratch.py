"""The scratch file system: what a candidate writes (its working directory, /tmp, /dev/shm) is
bounded in bytes and, where a tmpfs is mounted for it (by root, or by the supervisor in
bubblewrap's user namespace), in files; it is emptied for each candidate whatever the candidate
did to its modes; a killed run's mount is swept at the next start; no candidate holds the
capability the supervisor mounted it with.

Every case runs under each setup the code chooses between: bubblewrap as ``auto`` picks it, the
system's and the bundled bubblewrap, and none (a sandbox uid as root, else the unconfined
opt-in); as root (a tmpfs mounted per slot) and, in CI's ``.ci/nonroot`` pass, as an
unprivileged user (the supervisor's own tmpfs where the kernel lets it, else bubblewrap's
``--size``). Where a setup cannot bound something, the test asserts that the start-up warning
names it instead.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from evaluators.child import SCRATCH_ENV, remove_tree, scratch_skeleton
from evaluators.isolation import (
    RUNNER_DIR,
    UNCONFINED,
    SandboxUnavailable,
    bundled_bwrap,
    bwrap_argv,
    interpreter_paths,
    system_bwrap,
)
from evaluators.local import LocalEvaluator
from evaluators.sandbox import RunRequest, RunSpec
from evaluators.scratch import (
    INODE_SLACK,
    Scratch,
    ScratchLimits,
    mount_points,
    parse_version,
    sizes_tmpfs,
)
from evaluators.warm import WarmTemplate
from evolve.config import EvaluatorConfig
from evolve.errors import UserError
from evolve.problem import Problem, load_problem
from evolve.records import Status
from tests.cli_helpers import EVOLVE

#: The sandbox cases share one evaluator per setup, hence one event loop per module.
module_loop = pytest.mark.asyncio(loop_scope="module")

FIXTURE = Path(__file__).parent / "fixtures" / "toy"
DISK_MB = 8
MAX_FILES = 200
ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def scratch_problem(tmp_path_factory: pytest.TempPathFactory) -> Problem:
    root = tmp_path_factory.mktemp("scratch") / "toy"
    shutil.copytree(FIXTURE, root)
    text = (root / "problem.yaml").read_text().split("limits:")[0]
    # max_file_mb above max_disk_mb: only the scratch file system can stop these writes
    text += (
        f"limits:\n  timeout_s: 10\n  memory_mb: 512\n  max_file_mb: 64\n"
        f"  max_disk_mb: {DISK_MB}\n  max_files: {MAX_FILES}\n  max_output_kb: 8\nenv: []\n"
    )
    (root / "problem.yaml").write_text(text)
    return load_problem(root)


@dataclass
class Sandbox:
    ev: LocalEvaluator
    warnings: list[str]

    @property
    def bwrap(self) -> bool:
        return self.ev.isolation is not None and self.ev.isolation.kind == "bwrap"

    @property
    def own_scratch(self) -> bool:
        """Whether the sandbox must mount its own scratch: unprivileged bubblewrap where this
        kernel lets bubblewrap's user namespace mount a tmpfs (probed here on its own)."""
        isolation = self.ev.isolation
        return not ROOT and self.bwrap and isolation is not None and _userns_mounts(isolation.bwrap)

    @property
    def bytes_bounded(self) -> bool:
        """Whether this setup must bound the bytes written: root mounts a tmpfs; unprivileged,
        the sandbox mounts its own, else a bubblewrap >= 0.10 makes two (``--size``; ``auto``
        prefers such a bubblewrap)."""
        version = _version(self.ev.isolation.bwrap) if self.bwrap and self.ev.isolation else ()
        return ROOT or self.own_scratch or sizes_tmpfs(version)

    @property
    def files_bounded(self) -> bool:
        """Whether it must bound the file count: a tmpfs mounted with ``nr_inodes`` (root's, or
        the sandbox's own)."""
        return ROOT or self.own_scratch

    @property
    def one_bound(self) -> bool:
        """Whether the working directory, /tmp and /dev/shm share one bound (root's mount bound
        into bubblewrap, or the sandbox's own)."""
        return (ROOT and self.bwrap) or self.own_scratch


_MOUNT_PROBE = (
    "import ctypes; c = ctypes.CDLL(None)\n"
    "assert c.unshare(0x20000) == 0\n"
    "assert c.mount(b'x', b'/dev/shm', b'tmpfs', 0, b'size=1m,nr_inodes=8') == 0"
)


@functools.cache
def _userns_mounts(binary: str) -> bool:
    """Whether a process in ``binary``'s unprivileged sandbox, given CAP_SYS_ADMIN there, can
    make a mount namespace and mount a tmpfs in it (some kernels and containers refuse)."""
    argv = [binary, "--unshare-all", "--unshare-user", "--disable-userns", "--cap-add", "CAP_SYS_ADMIN"]
    argv += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    probe = subprocess.run([*argv, sys.executable, "-I", "-c", _MOUNT_PROBE], capture_output=True)
    return probe.returncode == 0


def _version(binary: str) -> tuple[int, ...]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    return parse_version(out.stdout)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def _started(problem: Problem, config: EvaluatorConfig) -> Sandbox:
    collect = _Collect()
    logger = logging.getLogger("evaluators.slots")
    logger.addHandler(collect)
    ev = LocalEvaluator(problem, config)
    try:
        result = await ev.evaluate("def run():\n    return {'x': 1}\n")
        assert result.status is Status.EVALUATED, result
    except BaseException:
        await ev.aclose()
        raise
    finally:
        logger.removeHandler(collect)
    return Sandbox(ev, collect.messages)


@pytest_asyncio.fixture(
    scope="module",
    loop_scope="module",
    params=["bwrap", "system-bwrap", "bundled-bwrap", "process"],
)
async def box(request: pytest.FixtureRequest, scratch_problem: Problem) -> AsyncIterator[Sandbox]:
    """One slot per setup, so that each candidate follows the previous one in the same slot:
    bubblewrap as ``auto`` picks it, the system's and the bundled one named, and none."""
    if request.param == "bundled-bwrap":
        config = EvaluatorConfig(concurrency=1, isolation="bwrap", bwrap=bundled_bwrap())
    elif request.param == "system-bwrap":
        if system_bwrap() is None:
            pytest.skip("no system bubblewrap here")
        config = EvaluatorConfig(concurrency=1, isolation="bwrap", bwrap=system_bwrap())
    else:
        config = EvaluatorConfig(concurrency=1, isolation=request.param)
    try:
        box = await _started(scratch_problem, config)
    except SandboxUnavailable:  # "process" needs a sandbox uid this setup has not got
        assert request.param == "process"
        box = await _started(scratch_problem, EvaluatorConfig(concurrency=1, isolation=UNCONFINED))
    try:
        yield box
    finally:
        await box.ev.aclose()


async def _report(box: Sandbox, code: str) -> dict[str, Any]:
    """Run ``code``, which prints one JSON line; that line."""
    result = await box.ev.evaluate(code)
    assert result.status is Status.EVALUATED, result
    return json.loads(result.stdout_tail.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _places(box: Sandbox) -> list[str]:
    """Where a candidate can write: its working directory, and under bubblewrap /tmp and
    /dev/shm (without bubblewrap those are the host's, outside the sandbox)."""
    return [".", "/tmp", "/dev/shm"] if box.bwrap else ["."]


_FILL = """
import errno, json, os
def run():
    out = {}
    for place in PLACES:
        written, error = 0, 0
        try:
            with open(os.path.join(place, 'fill'), 'wb') as fh:
                for _ in range(64):
                    fh.write(b'x' * 2**20)
                    fh.flush()
                    written += 1
        except OSError as exc:
            error = exc.errno
        os.unlink(os.path.join(place, 'fill'))
        out[place] = [written, error]
    print(json.dumps(out))
    return {'x': 1}
"""


@module_loop
async def test_writing_far_beyond_max_disk_mb_is_stopped_at_the_limit(box: Sandbox) -> None:
    places = _places(box)
    out = await _report(box, _FILL.replace("PLACES", repr(places)))
    if not box.bytes_bounded:  # no bounded file system here: the warning must say so
        assert any("bounded per file (max_file_mb), not in total" in w for w in box.warnings)
        return
    for place in places:  # 64 MB asked, stopped at the 8 MB bound with ENOSPC
        written, error = out[place]
        assert error == errno.ENOSPC and written <= DISK_MB, (place, out)


@module_loop
async def test_the_working_directory_tmp_and_dev_shm_share_one_bound(box: Sandbox) -> None:
    if not box.one_bound:
        pytest.skip("one file system for all three needs bubblewrap and root or a user namespace")
    code = """
import errno, json, os
def run():
    kept = []
    for place in PLACES:
        n = 0
        try:
            with open(os.path.join(place, 'part'), 'wb') as fh:
                for _ in range(3):
                    fh.write(b'x' * 2**20)
                    fh.flush()
                    n += 1
        except OSError:
            pass
        kept.append(n)
    print(json.dumps({'kept': kept}))
    return {'x': 1}
"""
    out = await _report(box, code.replace("PLACES", repr(_places(box))))
    assert sum(out["kept"]) <= DISK_MB, out


@module_loop
async def test_an_uncaught_full_disk_is_the_candidates_error_and_the_next_one_has_room(
    box: Sandbox,
) -> None:
    if not box.bytes_bounded:
        pytest.skip("nothing bounds the total here (the warning says so)")
    fill = "def run():\n    with open('fill', 'wb') as fh:\n        fh.write(b'x' * 2**26)\n"
    result = await box.ev.evaluate(fill)
    assert result.status is Status.EXCEPTION, result
    assert result.error is not None and "No space left on device" in result.error.message
    room = "def run():\n    open('half', 'wb').write(b'x' * 2**22)\n    return {'x': 5}\n"
    assert (await box.ev.evaluate(room)).metrics == {"score": 5.0}


@module_loop
async def test_creating_more_files_than_max_files_is_stopped(box: Sandbox) -> None:
    code = """
import json, os
def run():
    made, error = 0, 0
    try:
        for made in range(10 * MAX_FILES):
            open(f'f{made}', 'w').close()
    except OSError as exc:
        error = exc.errno
    print(json.dumps({'made': [made, error]}))
    return {'x': 1}
""".replace("MAX_FILES", str(MAX_FILES))
    out = await _report(box, code)
    if not box.files_bounded:  # the warning says what bounds the file count, if anything
        gap = "file count" if box.bytes_bounded else "not in total"
        assert any(gap in w for w in box.warnings), box.warnings
        return
    made, error = out["made"]
    # the sandbox's own folders and the candidate's file take a few of the slack's inodes
    assert error == errno.ENOSPC and MAX_FILES <= made <= MAX_FILES + INODE_SLACK, out


_LOCK = """
import json, os
def run():
    for place in PLACES:
        top = os.path.join(place, 'locked')
        os.makedirs(os.path.join(top, 'a', 'b', 'c'))
        for depth in ('', 'a', 'a/b', 'a/b/c'):
            open(os.path.join(top, depth, 'f'), 'w').write('x')
        for depth in ('a/b/c', 'a/b', 'a', ''):
            os.chmod(os.path.join(top, depth), 0)
        ro = os.path.join(place, 'readonly')
        os.makedirs(os.path.join(ro, 'inner'))
        open(os.path.join(ro, 'inner', 'f'), 'w').write('x')
        os.chmod(os.path.join(ro, 'inner'), 0o500)
        os.chmod(ro, 0o500)
        open(os.path.join(place, 'answer'), 'w').write('42')
    print(json.dumps({}))
    return {'x': 1}
"""

_LOOK = """
import json, os
def run():
    left = [p for place in PLACES for p in ('locked', 'readonly', 'answer')
            if os.path.lexists(os.path.join(place, p))]
    print(json.dumps({'left': left}))
    return {'x': 1}
"""


@module_loop
async def test_an_unreadable_tree_is_removed_before_the_next_candidate(box: Sandbox) -> None:
    places = _places(box)
    await _report(box, _LOCK.replace("PLACES", repr(places)))
    out = await _report(box, _LOOK.replace("PLACES", repr(places)))
    assert out["left"] == [], out


_CAPABILITIES = """
import ctypes, json, os
def run():
    caps = {}
    for line in open('/proc/self/status'):
        name, _, value = line.partition(':')
        if name in ('CapInh', 'CapPrm', 'CapEff', 'CapAmb'):
            caps[name] = int(value, 16)
    c = ctypes.CDLL(None, use_errno=True)
    os.mkdir('m')
    mounted = [
        c.mount(b'x', b'm', b'tmpfs', 0, b'nr_inodes=1000000') == 0,
        c.mount(b'.', b'm', None, 4096, None) == 0,  # a bind
        c.unshare(0x20000) == 0 and c.mount(b'x', b'm', b'tmpfs', 0, None) == 0,
    ]
    print(json.dumps({'caps': caps, 'mounted': mounted}))
    return {'x': 1}
"""


def _assert_powerless(out: dict[str, Any]) -> None:
    """No capability in any set, and no mount of any kind (the sandbox's supervisor had
    CAP_SYS_ADMIN to mount its scratch: none of it may reach a candidate)."""
    assert out["caps"] == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapAmb": 0}, out
    assert out["mounted"] == [False, False, False], out


@module_loop
async def test_a_candidate_holds_no_capability_and_cannot_mount(box: Sandbox) -> None:
    if box.ev.isolation is not None and box.ev.isolation.kind == "unconfined":
        pytest.skip("unconfined candidates have evolve's own privileges (the warning says so)")
    _assert_powerless(await _report(box, _CAPABILITIES))
    _assert_powerless(await _report(box, _CAPABILITIES))  # the template's next fork too


@module_loop
async def test_a_cold_candidate_holds_no_capability_and_cannot_mount(
    scratch_problem: Problem,
) -> None:
    box = await _started(scratch_problem, EvaluatorConfig(concurrency=1, mode="cold"))
    try:
        out = await _report(box, _CAPABILITIES)
    finally:
        await box.ev.aclose()
    _assert_powerless(out)


@module_loop
async def test_what_a_candidate_leaves_does_not_reach_the_next_cold_supervisor(
    scratch_problem: Problem,
) -> None:
    # Root's scratch mount outlives each cold supervisor: the next one empties it at start.
    box = await _started(scratch_problem, EvaluatorConfig(concurrency=1, mode="cold"))
    try:
        places = _places(box)
        await _report(box, _LOCK.replace("PLACES", repr(places)))
        out = await _report(box, _LOOK.replace("PLACES", repr(places)))
    finally:
        await box.ev.aclose()
    assert out["left"] == [], out


@module_loop
async def test_filling_the_scratch_is_a_full_disk_not_a_memory_kill(tmp_path: Path) -> None:
    # The tmpfs is memory, charged to the slot's memory cgroup: a scratch larger than the
    # memory limit must still end in ENOSPC at its own bound.
    root = tmp_path / "toy"
    shutil.copytree(FIXTURE, root)
    text = (root / "problem.yaml").read_text().split("limits:")[0]
    text += "limits:\n  timeout_s: 20\n  memory_mb: 64\n  max_file_mb: 1024\n  max_disk_mb: 384\n"
    (root / "problem.yaml").write_text(text + "env: []\n")
    box = await _started(load_problem(root), EvaluatorConfig(concurrency=1))
    try:
        if box.ev._slots._slots[0].memory is None:
            pytest.skip("no memory cgroup on this machine")
        code = _FILL.replace("PLACES", "['/tmp' if os.path.isdir('/tmp/work') else '.']")
        code = code.replace("range(64)", "range(512)")
        result = await box.ev.evaluate(code)
    finally:
        await box.ev.aclose()
    assert result.status is Status.EVALUATED, result
    ((written, error),) = json.loads(result.stdout_tail.strip().splitlines()[-1]).values()
    assert error == errno.ENOSPC and 300 < written <= 384, (written, error)


@module_loop
async def test_bubblewraps_own_root_and_dev_are_read_only(box: Sandbox) -> None:
    if not box.bwrap:
        pytest.skip("without bubblewrap the host's file system is the sandbox's")
    code = """
import json, os
def run():
    wrote = []
    for path in ('/leak', '/dev/leak'):
        try:
            open(path, 'w').write('x')
            wrote.append(path)
        except OSError:
            pass
    print(json.dumps({'wrote': wrote}))
    return {'x': 1}
"""
    assert (await _report(box, code))["wrote"] == []


# -- the host's side: removal, closing, and what a killed run left ------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _lock_tree(top: Path) -> None:
    (top / "a" / "b" / "c").mkdir(parents=True)
    for depth in ("", "a", "a/b", "a/b/c"):
        (top / depth / "f").write_text("x")
    for depth in ("a/b/c", "a/b", "a", ""):
        (top / depth).chmod(0)


def test_remove_tree_removes_a_locked_nested_tree_as_its_owner() -> None:
    """As the tree's owner without root's override (root drops to an unprivileged uid in a
    forked child): mode 000 at every depth, then a read-only nested tree."""
    work = Path(tempfile.mkdtemp(prefix="evolve-test-locked-"))  # pytest's folders are private
    work.chmod(0o755)
    if ROOT:
        os.chown(work, 65534, 65534)
    try:
        _remove_locked_trees_as_owner(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _remove_locked_trees_as_owner(work: Path) -> None:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(work)  # relative paths from here: the uid need not traverse its parents
            if ROOT:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            _lock_tree(Path("locked"))
            ro = Path("readonly", "inner")
            ro.mkdir(parents=True)
            (ro / "f").write_text("x")
            ro.chmod(0o500)
            ro.parent.chmod(0o500)
            remove_tree("locked")
            remove_tree("readonly")
            code = 0 if not os.listdir(".") else 2
        except BaseException as exc:
            os.write(2, f"{exc!r}\n".encode())
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def _stale_mount() -> Path:
    """What an evolve killed with SIGKILL leaves: a slot folder named by its (dead) pid with a
    tmpfs mounted on it, holding a locked tree owned by a sandbox uid."""
    stale = Path(tempfile.mkdtemp(prefix=f"evolve-slot0-{_dead_pid()}-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(stale)], check=True)
    _lock_tree(stale / "locked")
    os.chown(stale / "locked", 65534, 65534)
    return stale


def _remove_mount(path: Path) -> None:
    if path in mount_points():
        subprocess.run(["umount", "-l", str(path)], check=False)
    shutil.rmtree(path, ignore_errors=True)


@module_loop
@pytest.mark.skipif(not ROOT, reason="only root mounts a scratch tmpfs on the host")
async def test_a_killed_runs_scratch_mount_is_swept_at_start(scratch_problem: Problem) -> None:
    stale = _stale_mount()
    try:
        assert stale in mount_points()
        box = await _started(scratch_problem, EvaluatorConfig(concurrency=1))
        await box.ev.aclose()
        assert stale not in mount_points()
        assert not await asyncio.to_thread(os.path.lexists, stale)
    finally:
        _remove_mount(stale)


@module_loop
@pytest.mark.skipif(not ROOT, reason="only root mounts a scratch tmpfs on the host")
async def test_closing_unmounts_and_removes_every_slot(scratch_problem: Problem) -> None:
    box = await _started(scratch_problem, EvaluatorConfig(concurrency=2))
    slots = [slot.directory for slot in box.ev._slots._slots]
    try:
        assert all(s in mount_points() for s in slots)
        code = _LOCK.replace("PLACES", repr(_places(box)))
        assert (await box.ev.evaluate(code)).status is Status.EVALUATED
    finally:
        await box.ev.aclose()
    assert not any(s in mount_points() for s in slots)
    assert not [s for s in slots if await asyncio.to_thread(os.path.lexists, s)]


@pytest.mark.parametrize(("field", "value"), [("max_disk_mb", 0), ("max_files", -1)])
def test_a_bad_scratch_limit_is_an_error_naming_the_field(
    tmp_path: Path, field: str, value: int
) -> None:
    root = tmp_path / "toy"
    shutil.copytree(FIXTURE, root)
    text = (
        (root / "problem.yaml").read_text().replace("limits:\n", f"limits:\n  {field}: {value}\n")
    )
    (root / "problem.yaml").write_text(text)
    with pytest.raises(UserError, match=rf"field 'limits\.{field}': Input should be greater"):
        load_problem(root)


@pytest.mark.parametrize(
    ("text", "sizes"),
    [
        ("bubblewrap 0.8.0", False),
        ("bubblewrap 0.10.0", True),
        ("bubblewrap 0.11.0\n", True),
        ("", False),
    ],
)
def test_only_bubblewrap_0_10_or_later_can_bound_a_tmpfs(text: str, sizes: bool) -> None:
    assert sizes_tmpfs(parse_version(text)) is sizes


@pytest.mark.parametrize("capability", [True, False])
def test_the_supervisor_mounts_its_own_scratch_only_with_the_capability(
    tmp_path: Path, capability: bool
) -> None:
    # The supervisor's own code (child.py scratch-probe) in an unprivileged sandbox: with
    # CAP_SYS_ADMIN in its user namespace it mounts the scratch and drops the capability (exit
    # 0); without, the mount is refused and bubblewrap's tmpfs stay (exit 3), as at start-up.
    binary = bundled_bwrap()
    if binary is None or not _userns_mounts(binary):
        pytest.skip("no bubblewrap whose user namespace may mount a tmpfs here")
    needed = asyncio.run(interpreter_paths(sys.executable))
    scratch = Scratch("userns", ScratchLimits(2**20, 8), sized=True)
    argv = bwrap_argv(tmp_path, (), needed, binary, unprivileged=True, scratch=scratch)
    if not capability:  # (bubblewrap would keep every capability for a uid 0: root's)
        at = argv.index("--cap-add")
        argv[at : at + 2] = ["--cap-drop", "ALL"]
    argv += [sys.executable, "-I", str(RUNNER_DIR / "child.py"), "scratch-probe"]
    probe = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert probe.returncode == (0 if capability else 3), probe.stderr


def test_the_scratch_skeleton_keeps_only_the_way_to_bubblewraps_mount_points(
    tmp_path: Path,
) -> None:
    # An interpreter bound under /tmp (CI's unprivileged venv), a path with an escaped space,
    # and mounts elsewhere: only the folders on the way to the mounts under /tmp are kept.
    lines = [
        "1 0 0:1 / / rw - tmpfs tmpfs rw",
        "2 1 0:2 / /tmp rw - tmpfs tmpfs rw",
        "3 2 0:3 / /tmp/ci/venv ro - ext4 /dev/vda ro",
        "4 2 0:3 / /tmp/ci/src ro - ext4 /dev/vda ro",
        "5 2 0:3 / /tmp/a\\040b/c ro - ext4 /dev/vda ro",
        "6 1 0:4 / /dev/shm rw - tmpfs tmpfs rw",
        "7 1 0:5 / /usr ro - ext4 /dev/vda ro",
    ]
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text("\n".join(lines) + "\n")
    assert scratch_skeleton(str(mountinfo)) == {
        "/tmp": {"ci", "a b"},
        "/tmp/ci": {"venv", "src"},
        "/tmp/a b": {"c"},
        "/dev/shm": set(),
    }


# -- as a user meets it: the evolve command -----------------------------------------------------


def _init_problem(cwd: Path, limits: str) -> None:
    subprocess.run([*EVOLVE, "init", "p"], cwd=cwd, capture_output=True, check=True, timeout=60)
    yaml_path = cwd / "p" / "problem.yaml"
    yaml_path.write_text(
        yaml_path.read_text().replace("  timeout_s: 10\n", f"  timeout_s: 10\n{limits}")
    )


def test_evolve_eval_reports_a_full_scratch_as_the_programs_exception(tmp_path: Path) -> None:
    _init_problem(tmp_path, "  max_disk_mb: 8\n  max_file_mb: 64\n")
    (tmp_path / "fill.py").write_text(
        "def run():\n    with open('fill', 'wb') as fh:\n        fh.write(b'x' * 2**26)\n"
    )
    r = subprocess.run(
        [*EVOLVE, "eval", "problem=p", "fill.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    if not ROOT and "not in total" in r.stderr:  # neither root nor bubblewrap >= 0.10 here
        return
    assert result["status"] == "exception", result
    assert "No space left on device" in result["error"]["message"]
    # the start-up warning names what is not bounded, or is not printed at all
    for line in r.stderr.splitlines():
        if "not bounded per candidate" in line:
            assert line.split("not bounded per candidate on this machine:", 1)[1].strip(), r.stderr


def test_evolve_refuses_a_bad_max_disk_mb_in_one_line(tmp_path: Path) -> None:
    _init_problem(tmp_path, "  max_disk_mb: 0\n")
    r = subprocess.run(
        [*EVOLVE, "run", "problem=p"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "'limits.max_disk_mb'" in lines[0], r.stderr


@pytest.mark.parametrize(("spec", "lost"), [("-1 5", True), (None, False)])
async def test_a_supervisor_that_cannot_mount_its_scratch_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, spec: str | None, lost: bool
) -> None:
    # The start-up probe mounted it, a later supervisor could not (here: a size the kernel
    # refuses; unprivileged, even the mount namespace is refused): every reply says so and the
    # pool warns once, rather than the candidates running on bubblewrap's tmpfs in silence.
    env = {"PATH": os.environ.get("PATH", "/usr/bin")} | ({SCRATCH_ENV: spec} if spec else {})
    template = WarmTemplate(
        sys.executable, [], tmp_path, tmp_path / "work", env, (), lambda: None, lambda: None
    )
    spec_ = RunSpec(entry="run", timeout_s=10)
    request = RunRequest(
        code="def run():\n    return {'x': 1}\n",
        config=spec_.runner_config({}, None, None),
        timeout_s=10,
        output_head=1024,
        output_tail=1024,
    )
    try:
        with caplog.at_level(logging.WARNING, logger="evaluators"):
            first = await template.run(request)
            second = await template.run(request)
    finally:
        await template.aclose()
    assert json.loads(first.report).get("output") == {"x": 1}, first  # the candidate still ran
    assert first.scratch_lost is lost and second.scratch_lost is lost
    warned = [r for r in caplog.records if "could not mount the scratch" in r.getMessage()]
    assert len(warned) == (1 if lost else 0)
