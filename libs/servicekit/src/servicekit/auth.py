"""JWT bearer authentication: HS256 with a shared secret for development, RS256 / JWKS when configured."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

import jwt

from servicekit.problems import Problem
from servicekit.settings import ServiceSettings

Role = Literal["platform_admin", "school_admin", "team_member"]
ROLES: tuple[Role, ...] = ("platform_admin", "school_admin", "team_member")


@dataclass(frozen=True)
class Principal:
    sub: str
    role: Role
    school_id: UUID | None = None

    @property
    def is_platform_admin(self) -> bool:
        return self.role == "platform_admin"


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class TokenVerifier:
    """Verifies bearer tokens; remembers the ones it verified until they expire.

    A client sends the same token with every request for its lifetime, and PyJWT re-checks the key's shape
    and the signature each time (a third of a millisecond). A token is an immutable string, so the outcome
    of verifying it can only change with time: the cache keeps a principal no longer than the token's `exp`.
    """

    CACHE_SIZE = 4096

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.algorithms = [a for a in settings.auth_jwt_algorithms if a.lower() != "none"]
        self._jwks = jwt.PyJWKClient(settings.auth_jwks_url) if settings.auth_jwks_url else None
        self._verified: dict[str, tuple[Principal, float]] = {}

    def _key(self, token: str) -> str | bytes | jwt.PyJWK:
        if self._jwks is not None:
            return self._jwks.get_signing_key_from_jwt(token)
        header_alg = jwt.get_unverified_header(token).get("alg", "")
        if not isinstance(header_alg, str):  # PyJWT leaves the header's types to us
            raise jwt.InvalidAlgorithmError("the header's alg is not a name")
        if header_alg.startswith(("RS", "ES", "PS")) and self.settings.auth_jwt_public_key:
            return self.settings.auth_jwt_public_key
        return self.settings.auth_jwt_secret.get_secret_value()

    def verify(self, authorization: str | None) -> Principal:
        if not authorization:
            raise _unauthorized("A bearer token is required.")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("The Authorization header must be 'Bearer <token>'.")
        cached = self._verified.get(token)
        if cached is not None and time.time() < cached[1]:
            return cached[0]
        principal, expires = self._verify(token)
        if len(self._verified) >= self.CACHE_SIZE:
            self._verified.clear()  # crude but bounded; a busy process refills it within a second
        self._verified[token] = (principal, expires)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            claims = jwt.decode(
                token,
                self._key(token),
                algorithms=self.algorithms,
                issuer=self.settings.auth_jwt_issuer,
                audience=self.settings.auth_jwt_audience,
                options={
                    "require": ["exp", "sub", "role"],
                    "verify_aud": bool(self.settings.auth_jwt_audience),
                },
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("The token has expired.") from None
        except (jwt.InvalidTokenError, jwt.PyJWKClientError) as exc:
            raise _unauthorized(f"The token is not valid: {exc}") from None
        role = claims.get("role")
        if role not in ROLES:
            raise _unauthorized(f"Unknown role {role!r}.")
        school = claims.get("school_id")
        try:
            school_id = UUID(str(school)) if school else None
        except ValueError:
            raise _unauthorized("school_id is not a UUID.") from None
        if role == "school_admin" and school_id is None:
            raise _unauthorized("A school admin token must carry school_id.")
        return Principal(sub=str(claims["sub"]), role=role, school_id=school_id), float(claims["exp"])


def issue_token(
    secret: str,
    *,
    sub: str,
    role: Role,
    school_id: UUID | str | None = None,
    ttl: timedelta = timedelta(hours=8),
    issuer: str | None = None,
    audience: str | None = None,
) -> str:
    """A development/test token (HS256)."""
    now = datetime.now(UTC)
    claims: dict[str, object] = {"sub": sub, "role": role, "iat": now, "exp": now + ttl}
    if school_id:
        claims["school_id"] = str(school_id)
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")
