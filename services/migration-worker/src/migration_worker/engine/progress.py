"""Progress reporting shared by the CLI display, the job store and the job_progress events."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import psutil


@dataclass(frozen=True)
class Progress:
    phase: str
    entity: str | None
    rows_done: int
    rows_total: int
    rows_per_second: float | None = None
    eta_seconds: float | None = None
    cpu_percent: float | None = None
    memory_mb: float | None = None

    @property
    def percent(self) -> int:
        return 100 if self.rows_total == 0 else min(100, int(100 * self.rows_done / self.rows_total))

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "percent": self.percent}


ProgressSink = Callable[[Progress], Awaitable[None]]


class ProgressMeter:
    """Turns row counts into rate, ETA and the worker's own CPU / memory, then hands them to sinks."""

    def __init__(self, sinks: list[ProgressSink]) -> None:
        self._sinks = sinks
        self._process = psutil.Process(os.getpid())
        self._process.cpu_percent(None)
        self._started = time.monotonic()

        self.last: tuple[str, str | None, int, int] | None = None

    def restart(self) -> None:
        self._started = time.monotonic()

    async def beat(self) -> None:
        """Repeat the last progress: a long statement (staging, preparing millions of rows) reports nothing
        for minutes, and a job whose row is not refreshed looks abandoned to the other replicas."""
        if self.last is not None:
            await self.emit(*self.last)

    async def emit(self, phase: str, entity: str | None, done: int, total: int) -> None:
        self.last = (phase, entity, done, total)
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rate = done / elapsed if done else None
        eta = (total - done) / rate if rate else None
        progress = Progress(
            phase=phase,
            entity=entity,
            rows_done=done,
            rows_total=total,
            rows_per_second=round(rate, 1) if rate else None,
            eta_seconds=round(eta, 1) if eta is not None else None,
            cpu_percent=self._process.cpu_percent(None),
            memory_mb=round(self._process.memory_info().rss / 2**20, 1),
        )
        for sink in self._sinks:
            await sink(progress)
