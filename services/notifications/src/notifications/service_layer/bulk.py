"""Bulk sends: one message to many recipients, fanned out through the broker in chunks.

The request writes the job and its chunk commands to the outbox in one transaction; each chunk is
consumed like any event (inbox, retries, parking) and planned into message rows keyed by the bulk id,
so a recipient listed twice, or a chunk delivered twice, still gets one message.
"""

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID

from contracts.envelope import Envelope
from servicekit.errors import PermanentError
from servicekit.outbox import add_event
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.adapters import repository
from notifications.adapters.crypto import PiiVault
from notifications.adapters.repository import Recipient
from notifications.adapters.tables import BulkJobRow
from notifications.domain.commands import SendBulkChunk
from notifications.domain.routing import Channel
from notifications.service_layer.planning import MessageSpec, Planner


@dataclass(frozen=True)
class BulkRecipient:
    name: str
    language: str
    phone: str | None
    email: str | None


async def start_bulk(
    session: AsyncSession,
    vault: PiiVault,
    *,
    created_by: str,
    channel: Channel,
    subject: str,
    text_: str,
    urgent: bool,
    recipients: Sequence[BulkRecipient],
    chunk_size: int,
) -> BulkJobRow:
    job = BulkJobRow(
        created_by=created_by,
        channel=channel,
        template="bulk_message",
        variables={"subject": subject, "text": text_},
        urgent=urgent,
        total=len(recipients),
        chunks=-(-len(recipients) // chunk_size),
        status="fanning_out",
    )
    session.add(job)
    await session.flush()
    for index, start in enumerate(range(0, len(recipients), chunk_size)):
        chunk = [asdict(r) for r in recipients[start : start + chunk_size]]
        command = SendBulkChunk(bulk_id=job.id, chunk=index, recipients_enc=vault.encrypt(json.dumps(chunk)))
        await add_event(session, Envelope.wrap(command))
    return job


class BulkChunkHandler:
    def __init__(self, planner: Planner, vault: PiiVault) -> None:
        self.planner, self.vault = planner, vault

    async def __call__(self, envelope: Envelope[Any], session: AsyncSession) -> None:
        command: SendBulkChunk = envelope.data
        job = await session.get(BulkJobRow, command.bulk_id)
        if job is None:
            raise PermanentError(f"bulk job {command.bulk_id} does not exist")
        recipients = [
            Recipient(school_id=UUID(int=0), name=r["name"], language=r["language"], phone=r["phone"], email=r["email"])
            for r in json.loads(self.vault.decrypt(command.recipients_enc))
        ]
        spec = MessageSpec(
            event_id=job.id,  # one key for the whole job: duplicates across chunks collapse
            event_type=SendBulkChunk.event_type(),
            template=job.template,
            variables=dict(job.variables),
            channels=(job.channel,),  # type: ignore[arg-type]
            urgent=job.urgent,
            bulk_id=job.id,
        )
        rows = await self.planner.build_rows(session, spec, recipients)
        for row in rows:
            row["school_id"] = None
        await repository.insert_messages(session, rows)
        await session.execute(
            text(
                "UPDATE bulk_jobs SET chunks_done = chunks_done + 1, "
                "status = CASE WHEN chunks_done + 1 >= chunks THEN 'sending' ELSE status END WHERE id = :id"
            ),
            {"id": job.id},
        )


async def progress(session: AsyncSession, bulk_id: UUID) -> dict[str, Any] | None:
    job = await session.get(BulkJobRow, bulk_id)
    if job is None:
        return None
    counts = {
        row.status: row.n
        for row in (
            await session.execute(
                text("SELECT status, count(*) AS n FROM messages WHERE bulk_id = :id GROUP BY status"), {"id": bulk_id}
            )
        ).all()
    }
    planned = sum(counts.values())
    in_flight = counts.get("pending", 0) + counts.get("sending", 0)
    fanned_out = job.chunks_done >= job.chunks
    return {
        "id": job.id,
        "channel": job.channel,
        "total": job.total,
        "planned": planned,
        "chunks": job.chunks,
        "chunks_done": job.chunks_done,
        "counts": {
            s: counts.get(s, 0) for s in ("pending", "sending", "sent", "delivered", "read", "failed", "suppressed")
        },
        "status": "completed" if fanned_out and in_flight == 0 else ("sending" if fanned_out else "fanning_out"),
        "created_at": job.created_at,
    }
