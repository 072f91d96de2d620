"""The webhook intake's store: one INSERT per delivery on a plain asyncpg pool.

Intake is the hot path providers hit in bursts; one prepared statement on asyncpg (no ORM unit of work,
no session) keeps it to a single round trip. Everything after intake uses the service's SQLAlchemy
database as usual.
"""

import json
from datetime import datetime
from typing import Any

import asyncpg

# A repeat of a delivery we already hold is not stored again; one that was given up on ('failed', e.g. the
# provider's lookup kept timing out) is revived by its redelivery instead, so the provider's retry counts.
_STORE = """
INSERT INTO webhook_inbox (provider, event_key, dedupe_key, headers, body, received_at, status, reason, attempts,
                           processed_at)
VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, 0, $9)
ON CONFLICT (dedupe_key) DO UPDATE
    SET status = 'received', attempts = 0, reason = 'redelivered after failing: ' || webhook_inbox.reason,
        processed_at = NULL, next_attempt_at = now()
    WHERE webhook_inbox.status = 'failed'
RETURNING id
"""


async def _nothing_to_reset(_: asyncpg.Connection) -> None:
    # asyncpg's default reset on release is one more round trip per delivery (RESET ALL, UNLISTEN, ...).
    # Intake only runs one autocommitted INSERT and never changes session state, so there is none to undo.
    return None


class WebhookInbox:
    def __init__(self, dsn: str, *, pool_size: int = 10) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None

    async def start(self) -> None:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(
                self.dsn, min_size=1, max_size=self.pool_size, reset=_nothing_to_reset
            )

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def store(
        self,
        *,
        provider: str,
        event_key: str | None,
        dedupe_key: str | None,
        headers: dict[str, Any],
        body: bytes,
        received_at: datetime,
        status: str,
        reason: str | None = None,
    ) -> int | None:
        """The new row's id; None when `dedupe_key` is already held (the delivery is a duplicate)."""
        if self._pool is None:
            raise RuntimeError("webhook inbox not started")
        processed_at = received_at if status != "received" else None
        row_id: int | None = await self._pool.fetchval(
            _STORE,
            provider,
            event_key,
            dedupe_key,
            json.dumps(headers),
            body,
            received_at,
            status,
            reason,
            processed_at,
        )
        return row_id
