"""A background loop that works in rounds and sleeps until woken by a PostgreSQL NOTIFY or a poll timeout."""

import asyncio
import contextlib
import logging

import asyncpg

log = logging.getLogger(__name__)


class NotifiedWorker:
    def __init__(self, *, dsn: str, channel: str, poll_seconds: float, name: str) -> None:
        self.dsn, self.channel, self.poll_seconds, self.name = dsn, channel, poll_seconds, name
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None
        self._stopping = False

    async def work_once(self) -> int:
        """One round; returns how many items it handled (0 makes the loop wait)."""
        raise NotImplementedError

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close_listener()

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self._ensure_listener()
                handled = await self.work_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s round failed", self.name)
                await self._close_listener()
                handled = 0
            if handled == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
                self._wake.clear()

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        self._listener = await asyncpg.connect(self.dsn)
        await self._listener.add_listener(self.channel, lambda *_: self._wake.set())

    async def _close_listener(self) -> None:
        if self._listener is not None:
            try:
                await self._listener.close(timeout=2)
            except Exception:
                self._listener.terminate()
            self._listener = None
