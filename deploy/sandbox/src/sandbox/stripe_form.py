"""Decode Stripe's form encoding (``metadata[order_id]=42``, ``expand[0]=x``) into nested dicts."""

import re
from typing import Any
from urllib.parse import parse_qsl

_KEY_PART = re.compile(r"[^\[\]]+")


def parse_stripe_form(raw: bytes | str) -> dict[str, Any]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    result: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        parts = _KEY_PART.findall(key)
        if not parts:
            continue
        node = result
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return result
