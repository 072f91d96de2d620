"""Settings a deployment gets wrong fail at start with the choices, not later with a KeyError."""

import pytest
from notifications.settings import Settings
from pydantic import ValidationError


def test_an_unknown_sms_provider_is_refused_with_the_names_allowed() -> None:
    with pytest.raises(ValidationError, match="generic_sms"):
        Settings(sms_providers=["telone", "generic"])


def test_every_sms_provider_name_is_accepted() -> None:
    assert Settings(sms_providers=["generic_sms", "econet", "telone"]).sms_providers == [
        "generic_sms",
        "econet",
        "telone",
    ]
