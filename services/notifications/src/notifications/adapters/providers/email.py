"""E-mail over SMTP (aiosmtplib): a text part and an HTML alternative."""

from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib
from pydantic import SecretStr

from notifications.adapters.providers.base import Accepted, ProviderError


class SmtpMailer:
    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        username: str | None = None,
        password: SecretStr | None = None,
        use_tls: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self._host, self._port, self._sender = host, port, sender
        self._username, self._password, self._tls, self._timeout = username, password, use_tls, timeout

    async def send(
        self, to: str, subject: str, text: str, html: str | None, *, reference: str | None = None
    ) -> Accepted:
        """`reference` (our message id) makes the Message-ID stable, so a resend is recognisable as one."""
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = to
        message["Subject"] = subject
        message_id = f"<{reference}@oneclass.example>" if reference else make_msgid(domain="oneclass.example")
        message["Message-ID"] = message_id
        message.set_content(text)
        if html:
            message.add_alternative(html, subtype="html")
        try:
            await aiosmtplib.send(
                message,
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password.get_secret_value() if self._password else None,
                start_tls=self._tls,
                timeout=self._timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise ProviderError(self.name, f"{type(exc).__name__}: {exc}") from None
        return Accepted(self.name, message_id.strip("<>"))
