"""One owner per run: the lease is refused while held, taken over from the dead, renewed by the
controller's heartbeat, and a controller whose lease was taken stops."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from evolve.app import OpenRun, start_run
from evolve.controller import Controller, RunHalted
from evolve.database import Database
from evolve.database.holders import Holder, process_start
from evolve.database.lease import LeaseHeld, RunLease
from evolve.database.models import RunLeaseRow
from evolve.llm.offline import OfflineMutator
from evolve.problem import Problem
from tests.test_controller import make_config, make_controller


def _lease(db: Database, run_id: str, pid: int, host: str = "elsewhere", **kw: Any) -> RunLease:
    holder = Holder(host, pid, process_start(pid), f"token-{pid}-{host}")
    return RunLease(db._engine, run_id, holder, **kw)


def test_a_held_lease_is_refused_naming_its_holder(db: Database) -> None:
    first = _lease(db, "r", 111)
    first.acquire()
    with pytest.raises(LeaseHeld, match="held by pid 111 on elsewhere"):
        _lease(db, "r", 222).acquire()
    first.release()
    _lease(db, "r", 222).acquire()  # released: free again


def test_an_expired_lease_is_taken_over(db: Database) -> None:
    _lease(db, "r", 111, lease_s=-1.0).acquire()  # expired at once: a lost machine
    taker = _lease(db, "r", 222)
    taker.acquire()
    assert db.lease_holder("r")["pid"] == 222  # type: ignore[index]


def test_a_dead_process_on_this_host_loses_its_lease_at_once(db: Database) -> None:
    import socket

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # a pid that existed and is gone (kill -9 leaves the same)
    _lease(db, "r", proc.pid, host=socket.gethostname()).acquire()
    _lease(db, "r", 222).acquire()  # not expired, but its holder is gone


def test_a_live_process_on_this_host_keeps_its_lease(db: Database) -> None:
    import os
    import socket

    _lease(db, "r", os.getppid(), host=socket.gethostname()).acquire()
    with pytest.raises(LeaseHeld):
        _lease(db, "r", 222).acquire()


def test_racing_takers_of_an_expired_lease_have_one_winner(db: Database) -> None:
    _lease(db, "r", 111, lease_s=-1.0).acquire()
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def take(pid: int) -> None:
        barrier.wait()
        try:
            _lease(db, "r", pid).acquire()
            outcomes.append("won")
        except LeaseHeld:
            outcomes.append("refused")

    threads = [threading.Thread(target=take, args=(1000 + i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused"] * 5 + ["won"]


def test_renew_after_a_takeover_raises(db: Database) -> None:
    from evolve.database.lease import LeaseLost

    mine = _lease(db, "r", 111)
    mine.acquire()
    with db._engine.begin() as conn:  # expire it, as if this holder had been stuck
        conn.execute(update(RunLeaseRow).values(expires_at=datetime.now(UTC) - timedelta(hours=1)))
    _lease(db, "r", 222).acquire()
    with pytest.raises(LeaseLost):
        mine.renew()


def _held_controller(toy: Problem, tmp_path: Path, *, max_wall_time: float) -> tuple[OpenRun, Controller]:
    """A new run holding its lease, and its controller beating every 0.1 s."""
    config = make_config(toy, tmp_path, max_iterations=100000, max_wall_time=max_wall_time)
    opened = start_run(config)
    llm = OfflineMutator(seed=0)
    return opened, make_controller(config, toy, opened.db, llm, lease=opened.lease, heartbeat_s=0.1)


async def test_the_heartbeat_renews_the_lease_while_the_run_goes(toy: Problem, tmp_path: Path) -> None:
    opened, controller = _held_controller(toy, tmp_path, max_wall_time=1.6)
    seen: set[Any] = set()

    async def watch() -> None:
        while True:
            holder = opened.db.lease_holder("t")
            if holder is not None:
                seen.add(holder["renewed_at"])
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch())
    try:
        async with asyncio.timeout(30):  # max_wall_time must end it long before
            summary = await controller.run()
    finally:
        watcher.cancel()
        await controller.aclose()
    assert summary.reason == "max_wall_time 1.6 s reached"
    assert len(seen) >= 5, f"the lease was renewed {len(seen)} times in 1.6 s with a 0.1 s heartbeat"
    opened.close()


async def test_a_controller_whose_lease_is_taken_stops(toy: Problem, tmp_path: Path) -> None:
    opened, controller = _held_controller(toy, tmp_path, max_wall_time=30)

    async def steal() -> None:
        await asyncio.sleep(1.0)
        with opened.db._engine.begin() as conn:
            conn.execute(update(RunLeaseRow).values(token="someone-else"))

    thief = asyncio.create_task(steal())
    with pytest.raises(RunHalted, match="another controller took over"):
        try:
            await controller.run()
        finally:
            await controller.aclose()
    await thief
    assert opened.db.get_run("t").status == "stopped"  # type: ignore[union-attr]
    opened.db.close()


def test_on_postgresql_a_held_run_is_refused_and_freed_when_released(postgres_url: str) -> None:
    db = Database.open(postgres_url)
    try:
        first = _lease(db, "pg", 111)
        first.acquire()  # takes the session advisory lock too
        with db._engine.begin() as conn:  # its row looks expired: the advisory lock still holds
            conn.execute(update(RunLeaseRow).values(expires_at=datetime.now(UTC) - timedelta(hours=1)))
        with pytest.raises(LeaseHeld, match="held by pid 111"):
            _lease(db, "pg", 222).acquire()
        first.release()
        _lease(db, "pg", 222).acquire()
        assert db.lease_holder("pg")["pid"] == 222  # type: ignore[index]
    finally:
        db.close()
