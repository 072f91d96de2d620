"""PayNow's message hash: upper-case hex SHA-512 over every field value in order (without `hash`), then the
integration key. The public SDK sends it but never checks what comes back; we check both ways."""

import hashlib
import hmac
from collections.abc import Mapping


def paynow_hash(fields: Mapping[str, str], integration_key: str) -> str:
    joined = "".join(value for key, value in fields.items() if key.lower() != "hash")
    return hashlib.sha512((joined + integration_key).encode("utf-8")).hexdigest().upper()


def hash_matches(fields: Mapping[str, str], integration_key: str) -> bool:
    given = next((value for key, value in fields.items() if key.lower() == "hash"), "")
    return hmac.compare_digest(given.encode(), paynow_hash(fields, integration_key).encode())
