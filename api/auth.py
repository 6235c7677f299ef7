"""Passwords (argon2id), session tokens (JWT HS256 in an httpOnly cookie), login limits.

Tokens carry `sub` (user id), `jti`, `iat`, `exp`, `iss` and `aud`; decoding accepts
HS256 only (so `none` and algorithm-confusion tokens are refused), requires every
claim and checks issuer and audience. Logout revokes the token's `jti` until it
expires. A failed login is recorded; more than the allowed failures per account (since
its last success) or per client address within the window answer 429 without
checking the password.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from topics.commands import MissingKey
from topics.settings import Settings

ALGORITHM = "HS256"
ISSUER = "ai-trader"
AUDIENCE = "ai-trader-api"
COOKIE = "auth_token"
MIN_PASSWORD = 10

_hasher = PasswordHasher()
# verified against when the email is unknown, so both paths cost one argon2 verify
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class TokenRefused(Exception):  # noqa: N818 - reads as what happened to the token
    """A token that is expired, tampered with, of another algorithm, or malformed."""


def hash_password(password: str) -> str:
    """argon2id hash (salted, with its parameters)."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password must be at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; constant work when there is no such user."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def jwt_secret(settings: Settings) -> bytes:
    """JWT_SECRET, or in dev/test a per-machine generated one in `.state/secrets/`."""
    if settings.jwt_secret is not None:
        value = settings.jwt_secret.get_secret_value().encode()
        if len(value) < 32:
            raise MissingKey("JWT_SECRET must be at least 32 characters (HS256)")
        return value
    if settings.env not in ("dev", "test"):
        raise MissingKey(f"JWT_SECRET is required when AI_TRADER_ENV={settings.env}")
    from topics.commands import _local_key  # the same 0600 per-machine file scheme

    return _local_key(Path(settings.state_dir) / "secrets" / "jwt_secret")


@dataclass(frozen=True)
class Claims:
    """What a valid token says."""

    user_id: str
    jti: str
    expires_at: datetime


def issue_token(secret: bytes, user_id: str, email: str, ttl: timedelta,
                now: datetime | None = None) -> tuple[str, Claims]:
    """A signed token for the user, and its claims."""
    issued = now or datetime.now(UTC)
    claims = Claims(user_id=user_id, jti=uuid.uuid4().hex, expires_at=issued + ttl)
    payload: dict[str, Any] = {
        "sub": user_id, "email": email, "jti": claims.jti, "iss": ISSUER, "aud": AUDIENCE,
        "iat": int(issued.timestamp()), "exp": int(claims.expires_at.timestamp()),
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM), claims


def decode_token(secret: bytes, token: str) -> Claims:
    """The claims of a valid token, or `TokenRefused` saying why."""
    try:
        payload = jwt.decode(
            token, secret, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
            options={"require": ["sub", "jti", "iat", "exp", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenRefused("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenRefused(f"token refused: {type(exc).__name__}") from exc
    if not isinstance(payload.get("sub"), str) or not isinstance(payload.get("jti"), str):
        raise TokenRefused("token refused: malformed claims")
    return Claims(user_id=payload["sub"], jti=payload["jti"],
                  expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC))


@dataclass(frozen=True)
class LoginLimit:
    """How many failures are allowed in the window, per account and per address."""

    window: timedelta
    per_account: int
    per_address: int

    def retry_after(self, counts: dict[str, Any], now: datetime) -> int | None:
        """Seconds until a login may be tried again, or None when it may be tried now."""
        waits = []
        if int(counts["by_email"]) >= self.per_account and counts["email_oldest"] is not None:
            waits.append(counts["email_oldest"] + self.window - now)
        if int(counts["by_address"]) >= self.per_address and counts["address_oldest"]:
            waits.append(counts["address_oldest"] + self.window - now)
        if not waits:
            return None
        return max(1, int(max(waits).total_seconds()) + 1)
