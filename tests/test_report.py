from __future__ import annotations

from datetime import UTC, datetime, timedelta

from evolve.database.models import RunRow
from evolve.runread import run_state


def _row(status: str, age_s: float) -> RunRow:
    return RunRow(id="r", problem="p", problem_root="/p", problem_fingerprint="f", config={}, seed=0,
                  status=status, updated_at=(datetime.now(UTC) - timedelta(seconds=age_s)).replace(tzinfo=None))


def test_a_running_run_with_a_recent_heartbeat_is_running() -> None:
    assert run_state(_row("running", 5)) == "running"


def test_a_running_run_without_heartbeat_is_stale() -> None:
    assert run_state(_row("running", 600)).startswith("stale (no heartbeat for 10 min")


def test_other_states_are_shown_as_stored() -> None:
    assert run_state(_row("interrupted", 600)) == "interrupted"
