"""The verifier's memory of verified tokens: it saves the signature check, never a refusal."""

import base64
import json
import time
from datetime import timedelta
from uuid import uuid4

import jwt
import pytest
from servicekit.auth import TokenVerifier, issue_token
from servicekit.problems import Problem
from servicekit.settings import DEV_JWT_SECRET, ServiceSettings


def verifier() -> TokenVerifier:
    return TokenVerifier(ServiceSettings(service_name="kit-test"))


def test_a_cached_token_still_expires() -> None:
    tokens = verifier()
    token = issue_token(DEV_JWT_SECRET, sub="a", role="school_admin", school_id=uuid4(), ttl=timedelta(seconds=1))
    assert tokens.verify(f"Bearer {token}").sub == "a"
    assert token in tokens._verified  # the second request is answered from memory...
    time.sleep(1.1)
    with pytest.raises(Problem) as refused:  # ...but not after the token's exp
        tokens.verify(f"Bearer {token}")
    assert refused.value.status == 401


def test_a_forged_twin_of_a_cached_token_is_refused() -> None:
    tokens = verifier()
    school = uuid4()
    token = issue_token(DEV_JWT_SECRET, sub="a", role="school_admin", school_id=school)
    tokens.verify(f"Bearer {token}")
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode({**claims, "role": "platform_admin"}, "not-the-secret", algorithm="HS256")
    with pytest.raises(Problem) as refused:
        tokens.verify(f"Bearer {forged}")
    assert refused.value.status == 401
    assert tokens.verify(f"Bearer {token}").role == "school_admin"


def test_the_memory_is_bounded() -> None:
    tokens = verifier()
    for i in range(TokenVerifier.CACHE_SIZE + 10):
        tokens.verify(f"Bearer {issue_token(DEV_JWT_SECRET, sub=str(i), role='platform_admin')}")
    assert len(tokens._verified) <= TokenVerifier.CACHE_SIZE


@pytest.mark.parametrize("alg", [5, None, ["HS256"]])
def test_a_header_whose_alg_is_not_a_name_is_a_401(alg: object) -> None:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    token = f"{part({'alg': alg, 'typ': 'JWT'})}.{part({'sub': 'x'})}.AAAA"
    with pytest.raises(Problem) as refused:
        verifier().verify(f"Bearer {token}")
    assert refused.value.status == 401
