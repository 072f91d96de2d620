"""Background work started with the service: the webhook appliers and the scheduler."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta

from servicekit.db import Database

from payments.adapters.providers.registry import Providers
from payments.service_layer import webhooks
from payments.service_layer.reconcile import reconcile
from payments.service_layer.schedule import run_due_checks
from payments.settings import Settings

log = logging.getLogger(__name__)


class WebhookWorker:
    """Applies stored webhooks; woken by intake in this process, polling for everyone else's rows.

    Intake comes first: a provider waiting for its 2xx retries (and, past its timeout, resends) while
    applying a stored row can wait a moment. So while deliveries are being received in this process only
    the first applier task runs (progress never stops); the others join as soon as intake is quiet.
    """

    def __init__(self, db: Database, providers: Providers, settings: Settings) -> None:
        self.db = db
        self.providers = providers
        self.settings = settings
        self.concurrency = settings.webhook_worker_concurrency
        self.wake = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.applied = 0
        self.intake_in_flight = 0
        self._intake_quiet = asyncio.Event()
        self._intake_quiet.set()

    @contextlib.contextmanager
    def receiving(self) -> Iterator[None]:
        """Wrap one intake request: the extra appliers stand aside until no delivery is in flight."""
        self.intake_in_flight += 1
        self._intake_quiet.clear()
        try:
            yield
        finally:
            self.intake_in_flight -= 1
            if self.intake_in_flight == 0:
                self._intake_quiet.set()

    async def start(self) -> None:
        self.tasks = [
            asyncio.create_task(self._loop(yields_to_intake=i > 0), name=f"webhook-worker-{i}")
            for i in range(self.concurrency)
        ]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks = []

    def notify(self) -> None:
        self.wake.set()

    async def drain(self) -> int:
        """Apply everything waiting now (tests, CLI)."""
        count = 0
        while await self._apply_next():
            count += 1
        return count

    async def _apply_next(self) -> bool:
        return await webhooks.apply_next(
            self.db, self.providers, self.settings.webhook_max_attempts, self.settings.webhook_retry_delays_s
        )

    async def _loop(self, *, yields_to_intake: bool) -> None:
        while True:
            if yields_to_intake:
                await self._intake_quiet.wait()
            try:
                if await self._apply_next():
                    self.applied += 1
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook worker failed; continuing")
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=self.settings.webhook_worker_poll_s)


class Scheduler:
    """Runs the due/overdue checks and reconciliation every interval; each job takes a cluster-wide lock."""

    def __init__(self, db: Database, providers: Providers, settings: Settings) -> None:
        self.db = db
        self.providers = providers
        self.settings = settings
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self._loop(), name="payments-scheduler")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def run_once(self) -> None:
        jobs: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("due checks", lambda: run_due_checks(self.db, datetime.now(UTC).date(), self.settings.overdue_grace_days)),
            (
                "reconciliation",
                lambda: reconcile(
                    self.db, self.providers, older_than=timedelta(minutes=self.settings.reconcile_after_minutes)
                ),
            ),
        ]
        for name, job in jobs:
            try:
                result = await job()
                log.info("%s: %s", name, result if result is not None else "another replica is running it")
            except Exception:
                log.exception("%s failed", name)

    async def _loop(self) -> None:
        while True:
            await self.run_once()
            await asyncio.sleep(self.settings.scheduler_interval_s)
