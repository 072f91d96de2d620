"""The worker's job loop: claims due or abandoned jobs and runs them, one at a time per replica."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from migration_worker.service_layer.handlers import MigrationService, run_next_due

log = logging.getLogger("migration_worker.scheduler")


class JobLoop:
    def __init__(self, service: MigrationService) -> None:
        self.service = service
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="migration-job-loop")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                while await run_next_due(self.service):
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                # The job row and job_failed event carry the reason; wait a poll interval before the next
                # claim so a persistent fault (database down) is not retried in a hot loop.
                log.exception("migration job failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.service.settings.scheduler_poll_seconds)
            self._wake.clear()
