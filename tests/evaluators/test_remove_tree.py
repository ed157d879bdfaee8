"""Removing a slot's or candidate's directory never opens up what holds it."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from evaluators.child import remove_tree


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
