"""Choosing the sandbox: bubblewrap when it works, a loud fallback, a strict mode that fails."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from evaluators import isolation
from evaluators.isolation import SandboxUnavailable, bwrap_argv, detect
from evaluators.local import LocalEvaluator
from evaluators.uids import UidLease
from evolve.problem import Problem
from evolve.records import Status


def _no_bwrap(monkeypatch: pytest.MonkeyPatch) -> None:
    real_which = shutil.which
    monkeypatch.setattr(
        isolation.shutil, "which", lambda name: None if name == "bwrap" else real_which(name)
    )


async def test_strict_bwrap_fails_instead_of_falling_back(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_bwrap(monkeypatch)
    with pytest.raises(SandboxUnavailable, match="not installed"):
        await detect("bwrap", sys.executable)


async def test_strict_bwrap_evaluator_raises_rather_than_running_unsandboxed(
    toy_problem: Problem,
    evaluator_for: Callable[..., LocalEvaluator],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _no_bwrap(monkeypatch)
    ev = evaluator_for(toy_problem, isolation="bwrap")
    try:
        with pytest.raises(SandboxUnavailable):
            await ev.evaluate(toy_problem.initial_code)
    finally:
        await ev.aclose()


async def test_auto_falls_back_and_says_so_once(
    toy_problem: Problem,
    evaluator_for: Callable[..., LocalEvaluator],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _no_bwrap(monkeypatch)
    ev = evaluator_for(toy_problem, isolation="auto")
    try:
        with caplog.at_level(logging.WARNING, logger="evaluators"):
            for _ in range(3):
                result = await ev.evaluate(toy_problem.initial_code)
                assert result.status is Status.EVALUATED
    finally:
        await ev.aclose()
    assert ev.isolation is not None and ev.isolation.kind == "process"
    fallbacks = [r for r in caplog.records if "bubblewrap is not usable" in r.getMessage()]
    assert len(fallbacks) == 1
    assert "not installed" in fallbacks[0].getMessage()


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
async def test_auto_uses_bwrap_when_it_works() -> None:
    chosen = await detect("auto", sys.executable)
    assert chosen.kind == "bwrap"


def test_bwrap_masks_hidden_dirs_and_rebinds_what_python_needs(tmp_path: Path) -> None:
    secret_home = tmp_path / "home"
    needed = secret_home / "py" / "lib"
    needed.mkdir(parents=True)
    secret_home.chmod(0o700)
    problem = tmp_path / "problem"
    problem.mkdir()
    argv = bwrap_argv(tmp_path / "slot", [problem], [needed])
    joined = " ".join(argv)
    masks = [Path(argv[i + 1]) for i, a in enumerate(argv) if a == "--tmpfs"]
    assert any(problem.is_relative_to(m) for m in masks)  # the problem folder is hidden
    assert any(secret_home.is_relative_to(m) for m in masks)  # the 0700 ancestor is masked
    assert "--unshare-net" in argv and "--unshare-pid" in argv
    assert f"--ro-bind {needed} {needed}" in joined  # ... and what Python needs comes back
    assert f"--perms 0755 --dir {secret_home / 'py'}" in joined
    assert argv.index(f"{needed}") > argv.index(str(secret_home))  # bound on top of the mask


def test_bwrap_hides_a_problem_folder_inside_a_needed_checkout(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"  # e.g. an editable install on sys.path
    problem = checkout / "problems" / "p"
    problem.mkdir(parents=True)
    argv = bwrap_argv(tmp_path / "slot", [problem], [checkout])
    binds = [i for i, a in enumerate(argv) if a == "--ro-bind" and argv[i + 1] == str(checkout)]
    masks = [i for i, a in enumerate(argv) if a == "--tmpfs" and argv[i + 1] == str(problem)]
    assert binds and masks  # the checkout (under /tmp here) comes back, the problem is masked
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
