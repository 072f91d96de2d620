"""Splitting an SMS into parts: GSM-7 fits 160 septets (153 per part of a long message), UCS-2 70 (67).

A long message is sent as one text; the gateway concatenates with UDH headers, which is why the
per-part size is smaller. We split ourselves only to count and bill parts and to show them in the log.
"""

from dataclasses import dataclass
from typing import Literal

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# These cost two septets (escape + character) and must never be cut between the two.
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True)
class Segmented:
    encoding: Encoding
    parts: list[str]

    @property
    def count(self) -> int:
        return len(self.parts)


def encoding_of(text: str) -> Encoding:
    return "GSM-7" if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text) else "UCS-2"


def _cost(ch: str, encoding: Encoding) -> int:
    if encoding == "GSM-7":
        return 2 if ch in GSM7_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1  # a surrogate pair is two UTF-16 units, kept together


def split(text: str) -> Segmented:
    encoding = encoding_of(text)
    single, multi = (160, 153) if encoding == "GSM-7" else (70, 67)
    if sum(_cost(ch, encoding) for ch in text) <= single:
        return Segmented(encoding, [text])
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for ch in text:
        cost = _cost(ch, encoding)
        if used + cost > multi:
            parts.append("".join(current))
            current, used = [], 0
        current.append(ch)
        used += cost
    if current:
        parts.append("".join(current))
    return Segmented(encoding, parts)
