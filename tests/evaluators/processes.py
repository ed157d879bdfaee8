"""Finding processes a test started, by marker, by ancestry or by sandbox uid."""

from __future__ import annotations

import asyncio
import fcntl
import os

from evaluators.uids import UID_BASE


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("State:"):
                    return not line.split()[1].startswith("Z")
    except OSError:
        return False
    return False


async def wait_dead(pid: int, within_s: float = 1.0) -> bool:
    """True once ``pid`` is gone; SIGKILL is delivered asynchronously, so poll briefly."""
    deadline = asyncio.get_running_loop().time() + within_s
    while pid_alive(pid):
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def marked_pids(marker: str) -> list[int]:
    """Live pids whose command line or name contains ``marker`` (works across namespaces)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{name}/comm", encoding="utf-8", errors="replace") as fh:
                comm = fh.read()
        except OSError:
            continue
        if (marker in cmdline or marker in comm) and pid_alive(int(name)):
            found.append(int(name))
    return found


async def wait_marked(marker: str, count: int, within_s: float = 2.0) -> bool:
    """Wait until exactly ``count`` processes carry ``marker``; False on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while len(marked_pids(marker)) != count:
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def _uid_unleased(uid: int) -> bool:
    """True when no evaluator holds ``uid``'s lease, so no process may run as it."""
    path = f"/tmp/evolve-sandbox-uids/{uid}.lock"
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def suite_processes() -> list[str]:
    """Live processes this suite may have left behind.

    Descendants of this pytest process, anything carrying a test marker ("evtest-"), and any
    process running as a sandbox uid that no evaluator holds any more. Other people's
    evaluators running at the same time are not counted.
    """
    me = os.getpid()
    parents: dict[int, int] = {}
    info: dict[int, tuple[int, str]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me or not pid_alive(int(name)):
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{name}/status", encoding="utf-8") as fh:
                status = dict(line.split(":", 1) for line in fh.read().splitlines() if ":" in line)
        except OSError:
            continue
        parents[int(name)] = int(status.get("PPid", "0").strip())
        info[int(name)] = (int(status.get("Uid", "0").split()[0]), cmdline)

    def descends_from_me(pid: int) -> bool:
        for _ in range(64):
            pid = parents.get(pid, 0)
            if pid == me:
                return True
            if pid <= 1:
                return False
        return False

    left = []
    for pid, (uid, cmdline) in info.items():
        sandbox_uid = UID_BASE <= uid < UID_BASE + 4096 and _uid_unleased(uid)
        if descends_from_me(pid) or "evtest-" in cmdline or sandbox_uid:
            left.append(f"{pid} uid={uid} ppid={parents[pid]} {cmdline[:120]}")
    return left


def spawner(marker: str) -> str:
    """A candidate that names itself ``marker``, starts a sleeping child, then sleeps."""
    return (
        "import ctypes, subprocess, sys, time\n"
        "def run():\n"
        f"    ctypes.CDLL(None).prctl(15, {marker.encode()!r})\n"
        f"    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', {marker!r}])\n"
        "    time.sleep(60)\n"
    )
