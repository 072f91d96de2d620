"""`TOKEN=$(make -s token ...)`, as the README's walkthrough uses it: standard output is the token alone."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import jwt
from servicekit.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]


def test_make_token_prints_the_token_and_nothing_else() -> None:
    school = str(uuid.uuid4())
    result = subprocess.run(
        ["make", "-s", "token", "ROLE=school_admin", f"SCHOOL={school}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    (token,) = result.stdout.splitlines()
    secret = ServiceSettings().auth_jwt_secret.get_secret_value()
    claims = jwt.decode(token, secret, algorithms=["HS256"])
    assert (claims["role"], claims["school_id"]) == ("school_admin", school)
