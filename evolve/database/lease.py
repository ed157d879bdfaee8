"""One owner per run: a lease in the database, renewed by the controller's heartbeat.

A controller that runs, resumes or replays a run first takes its lease: a row naming the holder
(host, pid, the process's start time) with an expiry. A second controller is refused while the
lease is held. A lease whose holder is gone is taken over: at once when the holder was a process
on this host that no longer exists (kill -9), otherwise once the lease expired (a lost machine).
Taking over is a compare-and-swap on the row's token, so two controllers racing for an expired
lease cannot both win. On PostgreSQL the holder also keeps a session advisory lock, which the
server drops the moment the holder's connection dies.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from evolve.database.holders import Holder, holder_alive, this_holder
from evolve.database.models import RunLeaseRow

#: How long a lease lasts without a renewal; the heartbeat renews it several times in that span.
LEASE_S = 60.0


class LeaseHeld(Exception):
    """Another live controller holds the run."""

    def __init__(self, run_id: str, holder: Holder, expires: datetime) -> None:
        self.holder = holder
        self.expires = expires
        super().__init__(f"run '{run_id}' is held by {holder.describe()} (another evolve run/resume)")


class LeaseLost(Exception):
    """The lease was taken over by another controller (ours had expired)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _advisory_key(run_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"evolve-run:{run_id}".encode()).digest()[:8], "big", signed=True)


class RunLease:
    """The lease of one run, held by this process once :meth:`acquire` returned."""

    def __init__(self, engine: Engine, run_id: str, holder: Holder | None = None, *, lease_s: float = LEASE_S) -> None:
        self._engine = engine
        self.run_id = run_id
        self.holder = holder or this_holder()
        self._lease_s = lease_s
        self._lock_conn: Connection | None = None

    def acquire(self) -> None:
        """Take the run; raises :class:`LeaseHeld` naming the live holder."""
        advisory = self._engine.dialect.name == "postgresql"
        if advisory:
            self._take_advisory_lock()
        try:
            for _ in range(3):
                if self._try_take(force=advisory):
                    return
            raise LeaseHeld(self.run_id, *self._current())  # pragma: no cover - a three-way race
        except BaseException:
            self._drop_advisory_lock()
            raise

    def renew(self) -> None:
        """Extend the lease; raises :class:`LeaseLost` if another controller took it."""
        with self._engine.begin() as conn:
            done = conn.execute(
                update(RunLeaseRow)
                .where(RunLeaseRow.run_id == self.run_id, RunLeaseRow.token == self.holder.token)
                .values(expires_at=_now() + timedelta(seconds=self._lease_s), renewed_at=_now())
            ).rowcount
        if done != 1:
            raise LeaseLost(f"run '{self.run_id}': another controller took over its lease")

    def release(self) -> None:
        """Give the run up (at the end of a run; a no-op if it was lost)."""
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    delete(RunLeaseRow).where(
                        RunLeaseRow.run_id == self.run_id, RunLeaseRow.token == self.holder.token
                    )
                )
        finally:
            self._drop_advisory_lock()

    # -- internals ---------------------------------------------------------------------------
    def _current(self) -> tuple[Holder, datetime]:
        with self._engine.connect() as conn:
            row = conn.execute(select(RunLeaseRow).where(RunLeaseRow.run_id == self.run_id)).one()
        return Holder(row.host, row.pid, row.started, row.token), _aware(row.expires_at)

    def _try_take(self, *, force: bool) -> bool:
        now = _now()
        values = {
            "host": self.holder.host,
            "pid": self.holder.pid,
            "started": self.holder.started,
            "token": self.holder.token,
            "acquired_at": now,
            "renewed_at": now,
            "expires_at": now + timedelta(seconds=self._lease_s),
        }
        with self._engine.begin() as conn:
            row = conn.execute(select(RunLeaseRow).where(RunLeaseRow.run_id == self.run_id)).one_or_none()
            if row is None:
                return self._insert(values)
            current = Holder(row.host, row.pid, row.started, row.token)
            gone = (
                force
                or current.token == self.holder.token
                or _aware(row.expires_at) <= now
                or not holder_alive(current.host, current.pid, current.started)
            )
            if not gone:
                raise LeaseHeld(self.run_id, current, _aware(row.expires_at))
            return conn.execute(
                update(RunLeaseRow)
                .where(RunLeaseRow.run_id == self.run_id, RunLeaseRow.token == current.token)
                .values(**values)
            ).rowcount == 1

    def _insert(self, values: dict[str, object]) -> bool:
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(RunLeaseRow).values(run_id=self.run_id, **values))
        except IntegrityError:
            return False  # taken a moment ago: look again
        return True

    def _take_advisory_lock(self) -> None:
        conn = self._engine.connect()
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _advisory_key(self.run_id)}).scalar()
        conn.commit()
        if not got:
            conn.close()
            try:
                holder, expires = self._current()
            except Exception:  # no lease row yet: the holder is still starting
                holder, expires = Holder("?", 0, "", ""), _now()
            raise LeaseHeld(self.run_id, holder, expires)
        self._lock_conn = conn

    def _drop_advisory_lock(self) -> None:
        conn, self._lock_conn = self._lock_conn, None
        if conn is None:
            return
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _advisory_key(self.run_id)})
            conn.commit()
        finally:
            conn.close()
