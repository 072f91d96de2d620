"""WhatsApp Business Cloud API: approved template messages with body parameters; signed status webhooks."""

import hashlib
import hmac

import httpx
from pydantic import SecretStr

from notifications.adapters.providers.base import Accepted, ProviderError


class WhatsAppCloud:
    name = "whatsapp"

    def __init__(self, http: httpx.AsyncClient, base_url: str, phone_number_id: str, token: SecretStr) -> None:
        self._http = http
        self._url = f"{base_url.rstrip('/')}/{phone_number_id}/messages"
        self._token = token

    async def send_template(
        self, to: str, name: str, language: str, params: list[str], *, reference: str | None = None
    ) -> Accepted:
        """`reference` (our message id) is the idempotency key: a resend is recognised, not delivered twice."""
        body = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "template",
            "template": {
                "name": name,
                "language": {"code": language},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": p} for p in params]}],
            },
        }
        try:
            headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
            if reference:
                headers["Idempotency-Key"] = reference
            response = await self._http.post(self._url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ProviderError(self.name, f"{type(exc).__name__}: {exc}") from None
        if response.status_code >= 300:
            raise ProviderError(self.name, f"HTTP {response.status_code}: {response.text[:200]}")
        try:
            wamid = response.json()["messages"][0]["id"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise ProviderError(self.name, "answer carries no message id") from None
        return Accepted(self.name, str(wamid))


def valid_hub_signature(body: bytes, header: str | None, app_secret: SecretStr) -> bool:
    """Meta signs the raw body: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 with the app secret>`."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256="))
