"""Webhook signatures exactly as the real providers compute them."""

import hashlib
import hmac
import time


def stripe_signature_header(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """``Stripe-Signature``: HMAC-SHA256 of ``"{t}.{payload}"`` keyed with the endpoint's whsec secret."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def hub_signature_256(payload: bytes, app_secret: str) -> str:
    """``X-Hub-Signature-256`` as Meta sends it: HMAC-SHA256 of the raw body keyed with the app secret."""
    return "sha256=" + hmac.new(app_secret.encode(), payload, hashlib.sha256).hexdigest()


def wrong_secret(secret: str) -> str:
    return secret + "-tampered"
