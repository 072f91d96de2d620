"""Addresses arriving over HTTP: normalised as they are hashed, or refused with a 422."""

from __future__ import annotations

from typing import TYPE_CHECKING

from servicekit.problems import Problem

from notifications.domain.phone import InvalidPhoneNumber

if TYPE_CHECKING:
    from notifications.bootstrap import Components


def normalised_or_422(components: Components, address: str, field: str) -> str:
    try:
        return components.normalise(address)
    except InvalidPhoneNumber as exc:
        raise Problem(422, "Invalid address", f"{field} must be an e-mail address or a phone number: {exc}") from None
