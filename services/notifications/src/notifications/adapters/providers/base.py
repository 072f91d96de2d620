"""What every provider adapter raises and returns."""

from dataclasses import dataclass


class ProviderError(Exception):
    """The provider did not accept the message (HTTP error, timeout, refused connection, bad answer)."""

    def __init__(self, provider: str, detail: str) -> None:
        super().__init__(f"{provider}: {detail}")
        self.provider = provider
        self.detail = detail


@dataclass(frozen=True)
class Accepted:
    provider: str
    provider_message_id: str
