"""A candidate's CPU time across all of its processes, measured against its limit from the host.

The slot's CPU cgroup (:class:`evaluators.cgroup.CpuCgroup`) counts every process in the
sandbox, and neither the candidate nor the supervisor can write to it. The launcher reads it when
the candidate starts and then only when the candidate could have reached its limit: at most
``rate`` cores run at once (the slot's cap, or the machine's cores), so not before
``remaining / rate`` seconds. A candidate that ends before then costs one read of a cgroup file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: The shortest wait between two reads, as a candidate nears its limit: with a rate cap of
#: ``r`` cores, a candidate is stopped within about ``r`` times this (plus one CFS period) of
#: CPU time past its limit.
MIN_INTERVAL_S = 0.02


@dataclass(frozen=True)
class CpuMeter:
    """How a launcher reads its slot's CPU time.

    Attributes:
        usage_s: CPU seconds the slot's processes have used so far (a counter that only grows).
        rate: the most cores the slot's processes can use at once (positive).
    """

    usage_s: Callable[[], float]
    rate: float


class CpuBudget:
    """One run's CPU time, from its start, against ``limit_s`` (times are the event loop's)."""

    def __init__(self, meter: CpuMeter, limit_s: float, now: float) -> None:
        self._meter = meter
        self._start = meter.usage_s()
        self.limit_s = limit_s
        self.used_s = 0.0
        self.exceeded = False
        self.next_check = now + self._wait()

    def _wait(self) -> float:
        return max(MIN_INTERVAL_S, (self.limit_s - self.used_s) / self._meter.rate)

    def check(self, now: float) -> bool:
        """Read the usage: True when the run has used its limit, else the next check is set."""
        self.used_s = self._meter.usage_s() - self._start
        if self.used_s >= self.limit_s:
            self.exceeded = True
            return True
        self.next_check = now + self._wait()
        return False
