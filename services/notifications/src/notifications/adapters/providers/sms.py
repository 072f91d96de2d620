"""SMS gateways behind one interface: TelOne, Econet and a generic HTTP gateway, each its own request shape.

`reference` is our message id and goes out as the idempotency key (header and the body's client
reference): a message re-sent after a crash between the gateway's acceptance and our record of it
is recognised by the gateway as the same message, not delivered twice.
"""

from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from notifications.adapters.providers.base import Accepted, ProviderError


class SmsGateway(Protocol):
    name: str

    async def send(self, to: str, text: str, *, reference: str, callback_url: str | None) -> Accepted: ...


async def _post(
    http: httpx.AsyncClient, provider: str, url: str, *, json: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    try:
        response = await http.post(url, json=json, headers=headers)
    except httpx.HTTPError as exc:
        raise ProviderError(provider, f"{type(exc).__name__}: {exc}") from None
    if response.status_code >= 300:
        raise ProviderError(provider, f"HTTP {response.status_code}: {response.text[:200]}")
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        raise ProviderError(provider, "answer is not JSON") from None
    return body


class TeloneGateway:
    name = "telone"

    def __init__(self, http: httpx.AsyncClient, base_url: str, api_key: SecretStr, sender: str) -> None:
        self._http, self._url, self._key, self._sender = http, base_url.rstrip("/") + "/sms", api_key, sender

    async def send(self, to: str, text: str, *, reference: str, callback_url: str | None) -> Accepted:
        body = {"to": to, "message": text, "sender_id": self._sender, "reference": reference}
        if callback_url:
            body["callback_url"] = callback_url
        answer = await _post(
            self._http,
            self.name,
            self._url,
            json=body,
            headers={"X-API-Key": self._key.get_secret_value(), "Idempotency-Key": reference},
        )
        return _accepted(self.name, answer.get("message_id"))


class EconetGateway:
    name = "econet"

    def __init__(self, http: httpx.AsyncClient, base_url: str, api_key: SecretStr, sender: str) -> None:
        self._http, self._url, self._key, self._sender = http, base_url.rstrip("/") + "/messages", api_key, sender

    async def send(self, to: str, text: str, *, reference: str, callback_url: str | None) -> Accepted:
        body = {"destination": to, "text": text, "source": self._sender, "clientReference": reference}
        if callback_url:
            body["dlrUrl"] = callback_url
        answer = await _post(
            self._http,
            self.name,
            self._url,
            json=body,
            headers={"Authorization": f"ApiKey {self._key.get_secret_value()}", "Idempotency-Key": reference},
        )
        return _accepted(self.name, answer.get("messageId"))


class GenericHttpGateway:
    """Any gateway speaking the common `{to, text, from}` + bearer-token shape."""

    def __init__(
        self, http: httpx.AsyncClient, base_url: str, api_key: SecretStr, sender: str, name: str = "generic_sms"
    ) -> None:
        self.name = name
        self._http, self._url, self._key, self._sender = http, base_url.rstrip("/") + "/send", api_key, sender

    async def send(self, to: str, text: str, *, reference: str, callback_url: str | None) -> Accepted:
        body = {"to": to, "text": text, "from": self._sender, "client_ref": reference}
        if callback_url:
            body["callback_url"] = callback_url
        answer = await _post(
            self._http,
            self.name,
            self._url,
            json=body,
            headers={"Authorization": f"Bearer {self._key.get_secret_value()}", "Idempotency-Key": reference},
        )
        return _accepted(self.name, answer.get("id"))


def _accepted(provider: str, message_id: object) -> Accepted:
    if not isinstance(message_id, str) or not message_id:
        raise ProviderError(provider, "answer carries no message id")
    return Accepted(provider, message_id)
