"""Commands the notifications service sends itself through the broker (bulk fan-out)."""

from uuid import UUID

from contracts.envelope import Payload


class SendBulkChunk(Payload):
    """One slice of a bulk send. Recipients travel encrypted: the broker stores messages on disk."""

    producer = "notifications"
    event = "send_bulk_chunk"
    is_command = True

    bulk_id: UUID
    chunk: int
    recipients_enc: str
