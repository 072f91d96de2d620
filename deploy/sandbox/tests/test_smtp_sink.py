from collections.abc import AsyncIterator
from email.message import EmailMessage

import aiosmtplib
import httpx
import pytest
from sandbox import RunningSandbox


def _message(to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "notifications@oneclass.example"
    message["To"] = to
    message["Subject"] = "Your migration is scheduled"
    message.set_content("Plain text body")
    message.add_alternative("<p>HTML body</p>", subtype="html")
    return message


@pytest.fixture
async def inspect(sandbox: RunningSandbox, client: httpx.Client) -> AsyncIterator[httpx.AsyncClient]:
    # ``client`` resets the sandbox; the async client keeps the event loop free while it inspects.
    async with httpx.AsyncClient(base_url=sandbox.base_url) as http:
        yield http


async def test_sink_keeps_subject_text_and_html(sandbox: RunningSandbox, inspect: httpx.AsyncClient) -> None:
    await aiosmtplib.send(_message("head@school.example"), hostname=sandbox.smtp_host, port=sandbox.smtp_port)

    [email] = (await inspect.get("/_sandbox/emails", params={"to": "head@school.example"})).json()
    assert email["subject"] == "Your migration is scheduled"
    assert email["from"] == "notifications@oneclass.example"
    assert email["text"].strip() == "Plain text body"
    assert email["html"].strip() == "<p>HTML body</p>"
    assert (await inspect.get("/_sandbox/emails", params={"to": "someone@else.example"})).json() == []


async def test_smtp_fault_is_a_temporary_failure(sandbox: RunningSandbox, inspect: httpx.AsyncClient) -> None:
    await inspect.post("/_sandbox/faults/smtp", json={"fail_next": 1})
    with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
        await aiosmtplib.send(_message("a@school.example"), hostname=sandbox.smtp_host, port=sandbox.smtp_port)
    await aiosmtplib.send(_message("a@school.example"), hostname=sandbox.smtp_host, port=sandbox.smtp_port)

    assert refused.value.code == 451
    assert len((await inspect.get("/_sandbox/emails")).json()) == 1


async def test_a_resent_message_id_is_delivered_once(sandbox: RunningSandbox, inspect: httpx.AsyncClient) -> None:
    first, resent, other = (_message("head@school.example") for _ in range(3))
    first["Message-ID"] = resent["Message-ID"] = "<msg-1@oneclass.example>"
    other["Message-ID"] = "<msg-2@oneclass.example>"
    for message in (first, resent, other):
        await aiosmtplib.send(message, hostname=sandbox.smtp_host, port=sandbox.smtp_port)

    stored = (await inspect.get("/_sandbox/emails", params={"to": "head@school.example"})).json()
    ids = sorted(e["headers"]["Message-ID"] for e in stored)
    assert ids == ["<msg-1@oneclass.example>", "<msg-2@oneclass.example>"]
