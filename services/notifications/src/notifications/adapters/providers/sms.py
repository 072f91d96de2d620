"""SMS gateways behind one interface: TelOne, Econet and a generic HTTP gateway, each its own request shape.

`reference` is our message id and goes out as the idempotency key (header and the body's client
reference): a message re-sent after a crash between the gateway's acceptance and our record of it
is recognised by the gateway as the same message, not delivered twice.
"""

from abc import ABC, abstractmethod
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


class JsonSmsGateway(ABC):
    """A gateway taking one JSON message per request; subclasses name their wire fields and auth."""

    name: str
    path: str
    fields: tuple[str, str, str, str]  # recipient, text, sender, our reference
    callback_field: str
    id_field: str

    def __init__(self, http: httpx.AsyncClient, base_url: str, api_key: SecretStr, sender: str) -> None:
        self._http, self._url, self._key, self._sender = http, base_url.rstrip("/") + self.path, api_key, sender

    @abstractmethod
    def auth_headers(self, key: str) -> dict[str, str]:
        """Each gateway authenticates its own way."""

    async def send(self, to: str, text: str, *, reference: str, callback_url: str | None) -> Accepted:
        body = dict(zip(self.fields, (to, text, self._sender, reference), strict=True))
        if callback_url:
            body[self.callback_field] = callback_url
        headers = {**self.auth_headers(self._key.get_secret_value()), "Idempotency-Key": reference}
        answer = await _post(self._http, self.name, self._url, json=body, headers=headers)
        return _accepted(self.name, answer.get(self.id_field))


class TeloneGateway(JsonSmsGateway):
    name, path, id_field, callback_field = "telone", "/sms", "message_id", "callback_url"
    fields = ("to", "message", "sender_id", "reference")

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"X-API-Key": key}


class EconetGateway(JsonSmsGateway):
    name, path, id_field, callback_field = "econet", "/messages", "messageId", "dlrUrl"
    fields = ("destination", "text", "source", "clientReference")

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"ApiKey {key}"}


class GenericHttpGateway(JsonSmsGateway):
    """Any gateway speaking the common `{to, text, from}` + bearer-token shape."""

    name, path, id_field, callback_field = "generic_sms", "/send", "id", "callback_url"
    fields = ("to", "text", "from", "client_ref")

    def __init__(
        self, http: httpx.AsyncClient, base_url: str, api_key: SecretStr, sender: str, name: str = "generic_sms"
    ) -> None:
        super().__init__(http, base_url, api_key, sender)
        self.name = name

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


def _accepted(provider: str, message_id: object) -> Accepted:
    if not isinstance(message_id, str) or not message_id:
        raise ProviderError(provider, "answer carries no message id")
    return Accepted(provider, message_id)
