"""Phone numbers in E.164: Zimbabwe's local forms (0771 234 567) are read with ZW as the default region."""

import phonenumbers

DEFAULT_REGION = "ZW"


class InvalidPhoneNumber(ValueError):
    pass


def to_e164(raw: str, region: str = DEFAULT_REGION) -> str:
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"{raw!r} is not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber(f"{raw!r} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def mask(e164: str) -> str:
    """What the communication log shows: enough to recognise, not enough to harvest."""
    return e164[:6] + "*" * max(len(e164) - 9, 0) + e164[-3:] if len(e164) > 9 else "***"


def mask_email(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"
