"""JSON for the connectors' durable state: datetimes and Decimals round-trip exactly.

A datetime is written as `{"$dt": iso}` and a Decimal as `{"$dec": text}`, so `loads`
gives back what `dumps` was given (plain JSON would turn both into lossy strings or
floats, and money must not pass through a float). Tuples come back as lists.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    raise TypeError(f"cannot store {type(value).__name__}")


def _hook(obj: dict[str, Any]) -> Any:
    if "$dt" in obj:
        return datetime.fromisoformat(obj["$dt"])
    if "$dec" in obj:
        return Decimal(obj["$dec"])
    return obj


def dumps(record: dict[str, Any]) -> str:
    """A record (datetimes, Decimals) as JSON that `loads` restores exactly."""
    return json.dumps(record, default=_default, sort_keys=True)


def loads(text: str | bytes) -> dict[str, Any]:
    """The inverse of `dumps`."""
    value: dict[str, Any] = json.loads(text, object_hook=_hook)
    return value
