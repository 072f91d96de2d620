"""SMTP sink: an aiosmtpd server on the sandbox's event loop that keeps every message it is given."""

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from sandbox.faults import FaultRegistry


@dataclass
class StoredEmail:
    mail_from: str
    rcpt_to: list[str]
    subject: str
    from_header: str
    to_header: str
    text: str | None
    html: str | None
    headers: dict[str, str]
    raw: bytes
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_json(self) -> dict[str, Any]:
        return {
            "mail_from": self.mail_from,
            "rcpt_to": self.rcpt_to,
            "from": self.from_header,
            "to": self.to_header,
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "headers": self.headers,
            "received_at": self.received_at.isoformat(),
        }


class EmailStore:
    def __init__(self) -> None:
        self.messages: list[StoredEmail] = []

    def reset(self) -> None:
        self.messages.clear()

    def seen(self, email: StoredEmail) -> bool:
        message_id = email.headers.get("Message-ID")
        return message_id is not None and any(m.headers.get("Message-ID") == message_id for m in self.messages)

    def find(self, to: str | None = None) -> list[StoredEmail]:
        if to is None:
            return list(self.messages)
        wanted = to.lower()
        return [m for m in self.messages if wanted in (r.lower() for r in m.rcpt_to)]


def _part(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_type() != f"text/{subtype}":
        return None
    content = part.get_content()
    return content if isinstance(content, str) else None


def parse_email(mail_from: str, rcpt_to: list[str], raw: bytes) -> StoredEmail:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return StoredEmail(
        mail_from=mail_from,
        rcpt_to=rcpt_to,
        subject=str(message.get("Subject", "")),
        from_header=str(message.get("From", "")),
        to_header=str(message.get("To", "")),
        text=_part(message, "plain"),
        html=_part(message, "html"),
        headers={k: str(v) for k, v in message.items()},
        raw=raw,
    )


class SinkHandler:
    def __init__(self, store: EmailStore, faults: FaultRegistry) -> None:
        self._store = store
        self._faults = faults

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._faults.should_fail("smtp") is not None:
            return "451 4.3.0 Injected fault: mail system unavailable, try again later"
        raw = envelope.original_content or envelope.content or b""
        assert isinstance(raw, bytes)
        email = parse_email(envelope.mail_from or "", list(envelope.rcpt_tos), raw)
        # A resend after a lost answer carries the same Message-ID: accepted again, delivered once.
        if not self._store.seen(email):
            self._store.messages.append(email)
        return "250 2.0.0 Message accepted for delivery"


class SmtpSink:
    def __init__(self, handler: SinkHandler) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self.port: int | None = None

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self._handler, hostname="sandbox.oneclass.local", enable_SMTPUTF8=True, loop=loop),
            host=host,
            port=port,
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
