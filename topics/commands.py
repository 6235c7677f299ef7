"""Signed control commands: the only way anything changes the gate or the broker service.

A command is an `ai_trader.control.ControlCommand` record. Its `signature` is the hex
HMAC-SHA256, under `COMMAND_HMAC_KEY`, of the canonical JSON of every other field
(sorted keys, no whitespace, `issued_at` as integer microseconds, `lot_size` as a plain
decimal string). The gate refuses, and logs, a command that is unsigned, forged,
older than `max_age` or issued further than `max_skew` in the future; replays (the same
`command_id` twice) are refused by the gate, which remembers the ids it has applied.

Without `COMMAND_HMAC_KEY`, dev and test deployments use a random key kept in
`.state/secrets/command_hmac_key` (mode 0600), shared by the processes on one machine;
staging and prod refuse to start without the variable.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from topics.settings import Settings

KINDS: Final = frozenset({
    "approve_idea", "reject_idea", "kill_switch", "resume", "set_risk_config",
    "put_strategy", "refresh_account",
})
#: Commands the gate consumes from gate.inbox; the rest go to broker.commands.
GATE_KINDS: Final = frozenset(KINDS - {"refresh_account"})
SIGNED_FIELDS: Final = (
    "command_id", "kind", "account", "issuer", "issued_at", "idea_id", "strategy_id",
    "lot_size", "reason", "payload_json",
)
DEFAULT_MAX_AGE: Final = timedelta(minutes=5)
DEFAULT_MAX_SKEW: Final = timedelta(seconds=30)


class CommandRefused(ValueError):  # noqa: N818 - reads as what happened to the command
    """A command that must not be applied; the message says why, for the log and reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class MissingKey(RuntimeError):  # noqa: N818
    """No signing key in an environment that requires one."""


def _micros(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("issued_at must be timezone-aware")
    return round((value - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1_000_000)


def canonical(command: Mapping[str, Any]) -> bytes:
    """The bytes a command's signature covers."""
    out: dict[str, Any] = {}
    for name in SIGNED_FIELDS:
        value = command.get(name)
        if isinstance(value, datetime):
            value = _micros(value)
        elif isinstance(value, Decimal):
            value = format(value.normalize(), "f")
        out[name] = value
    return json.dumps(out, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(command: Mapping[str, Any], key: bytes) -> str:
    """The hex HMAC-SHA256 of the command under `key`."""
    return hmac.new(key, canonical(command), hashlib.sha256).hexdigest()


def new_command(
    kind: str,
    account: str,
    issuer: str,
    key: bytes,
    *,
    now: datetime | None = None,
    idea_id: str | None = None,
    strategy_id: str | None = None,
    lot_size: Decimal | None = None,
    reason: str | None = None,
    payload: Mapping[str, Any] | None = None,
    command_id: str | None = None,
) -> dict[str, Any]:
    """A signed ControlCommand record ready for `BusProducer.send`."""
    if kind not in KINDS:
        raise ValueError(f"unknown command kind {kind!r}; one of {sorted(KINDS)}")
    issued = now or datetime.now(UTC)
    record: dict[str, Any] = {
        "command_id": command_id or str(uuid.uuid4()),
        "kind": kind,
        "account": account,
        "issuer": issuer,
        "issued_at": issued,
        "idea_id": idea_id,
        "strategy_id": strategy_id,
        "lot_size": lot_size.quantize(Decimal("0.01")) if lot_size is not None else None,
        "reason": reason,
        "payload_json": (json.dumps(payload, sort_keys=True, separators=(",", ":"))
                         if payload is not None else None),
        "signature": "",
    }
    record["signature"] = sign(record, key)
    return record


def verify_signature(command: Mapping[str, Any], key: bytes) -> None:
    """Raise `CommandRefused` unless the command is of a known kind and authentic."""
    if command.get("kind") not in KINDS:
        raise CommandRefused("unknown_kind", f"unknown command kind {command.get('kind')!r}")
    signature = str(command.get("signature") or "")
    if not signature:
        raise CommandRefused("unsigned", "command has no signature")
    if not hmac.compare_digest(signature, sign(command, key)):
        raise CommandRefused("bad_signature", "signature does not match (forged or altered)")


def verify_fresh(
    command: Mapping[str, Any],
    now: datetime,
    max_age: timedelta = DEFAULT_MAX_AGE,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
) -> None:
    """Raise `CommandRefused` when the command is stale or from the future."""
    issued = command["issued_at"]
    if issued > now + max_skew:
        raise CommandRefused("from_future", f"issued_at {issued.isoformat()} is in the future")
    if now - issued > max_age:
        raise CommandRefused(
            "stale", f"issued {int((now - issued).total_seconds())} s ago, "
            f"older than {int(max_age.total_seconds())} s")


def verify(
    command: Mapping[str, Any],
    key: bytes,
    now: datetime,
    max_age: timedelta = DEFAULT_MAX_AGE,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
) -> None:
    """Raise `CommandRefused` unless the command is known, authentic and fresh."""
    verify_signature(command, key)
    verify_fresh(command, now, max_age, max_skew)


def command_key(settings: Settings) -> bytes:
    """The signing key: COMMAND_HMAC_KEY, or in dev/test a per-machine generated one."""
    if settings.command_hmac_key is not None:
        value = settings.command_hmac_key.get_secret_value().encode()
        if len(value) < 16:
            raise MissingKey("COMMAND_HMAC_KEY must be at least 16 characters")
        return value
    if settings.env not in ("dev", "test"):
        raise MissingKey(f"COMMAND_HMAC_KEY is required when AI_TRADER_ENV={settings.env}")
    return _local_key(Path(settings.state_dir) / "secrets" / "command_hmac_key")


def _local_key(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = secrets.token_hex(32).encode()
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(value)
    try:
        os.link(tmp, path)  # first writer wins when two processes start together
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes().strip()
