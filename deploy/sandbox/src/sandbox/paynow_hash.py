"""PayNow message hash: upper-case hex SHA-512 of every field value in order (``hash`` left out) followed
by the integration key. Dependency-free so the payments service can mirror it line for line."""

import hashlib
import hmac
from collections.abc import Mapping


def paynow_hash(fields: Mapping[str, str], integration_key: str) -> str:
    joined = "".join(value for key, value in fields.items() if key.lower() != "hash")
    return hashlib.sha512((joined + integration_key).encode("utf-8")).hexdigest().upper()


def with_hash(fields: Mapping[str, str], integration_key: str) -> dict[str, str]:
    return {**fields, "hash": paynow_hash(fields, integration_key)}


def hash_is_valid(fields: Mapping[str, str], integration_key: str) -> bool:
    given = next((value for key, value in fields.items() if key.lower() == "hash"), "")
    return hmac.compare_digest(given.upper(), paynow_hash(fields, integration_key))
