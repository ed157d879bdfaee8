"""Removing a slot's or candidate's directory never opens up what holds it."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from evaluators.child import clear_scratch, remove_tree


def test_a_tree_that_cannot_go_leaves_its_parents_mode_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The top itself refuses to go (here: its rmdir fails every time): its parent, which may
    # be /tmp, keeps its mode.
    parent = tmp_path / "parent"
    top = parent / "slot"
    top.mkdir(parents=True)
    parent.chmod(0o1777)
    real = shutil.rmtree

    def failing(path: str, onerror: Any = None, **kw: Any) -> None:
        if onerror is not None:
            onerror(os.rmdir, path, OSError("busy"))

    monkeypatch.setattr(shutil, "rmtree", failing)
    remove_tree(str(top))
    monkeypatch.setattr(shutil, "rmtree", real)
    assert stat.S_IMODE(parent.stat().st_mode) == 0o1777


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_slot_with_a_mount_left_in_it_leaves_tmp_alone(tmp_path: Path) -> None:
    parent = tmp_path / "parent"
    work = parent / "slot" / "work"
    work.mkdir(parents=True)
    parent.chmod(0o1777)
    subprocess.run(["mount", "-t", "tmpfs", "none", str(work)], check=True)
    try:
        remove_tree(str(parent / "slot"))
    finally:
        subprocess.run(["umount", str(work)], check=True)
    assert stat.S_IMODE(parent.stat().st_mode) == 0o1777


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_emptying_the_scratch_leaves_a_folder_bound_into_it_alone(tmp_path: Path) -> None:
    # Under bubblewrap a checkout or a virtual environment under /tmp is bound into the
    # sandbox's /tmp, with masks mounted inside it: the way to those masks is in the skeleton,
    # but what the bound folder holds is the host's (the supervisor tried to delete a checkout
    # bound read-only after every candidate: some 4 s each, and the data if it was writable).
    scratch = tmp_path / "scratch"
    bound = scratch / "checkout"
    bound.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "none", str(bound)], check=True)
    try:
        (bound / "evolve").mkdir()
        (bound / "evolve" / "cli.py").write_text("host's")
        (bound / "problems").mkdir()  # a mask's mount point
        (scratch / "left-by-a-candidate").write_text("x")
        (scratch / "cache").mkdir()
        (scratch / "cache" / "answer").write_text("42")
        skeleton = {str(scratch): {"checkout"}, str(bound): {"problems"}}
        clear_scratch(skeleton, roots=(str(scratch),))
        assert (bound / "evolve" / "cli.py").read_text() == "host's"
        assert sorted(p.name for p in scratch.iterdir()) == ["checkout"]
    finally:
        subprocess.run(["umount", str(bound)], check=True)
