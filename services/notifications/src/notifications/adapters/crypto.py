"""PII at rest: MultiFernet encryption (first key encrypts, all keys decrypt) and a keyed hash for lookup.

Rotation: put the new key first, keep the old ones; `rotate` re-encrypts a token under the first key,
so rows can be re-encrypted in small batches while the service keeps running.
"""

import hashlib
import hmac
from collections.abc import Sequence

from cryptography.fernet import Fernet, MultiFernet
from pydantic import SecretStr


class PiiVault:
    def __init__(self, keys: Sequence[SecretStr], hash_key: SecretStr) -> None:
        if not keys:
            raise ValueError("at least one PII key is required")
        self._fernet = MultiFernet([Fernet(k.get_secret_value().encode()) for k in keys])
        self._primary = Fernet(keys[0].get_secret_value().encode())
        self._hash_key = hash_key.get_secret_value().encode()

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        return self._fernet.decrypt(token.encode()).decode()

    def rotate(self, token: str) -> str:
        return self._fernet.rotate(token.encode()).decode()

    def is_current(self, token: str) -> bool:
        """True when the primary key already decrypts it (no rotation needed)."""
        try:
            self._primary.decrypt(token.encode())
        except Exception:
            return False
        return True

    def blind_index(self, value: str) -> str:
        """Deterministic keyed hash: equal addresses match, without storing or revealing them."""
        return hmac.new(self._hash_key, value.strip().lower().encode(), hashlib.sha256).hexdigest()
