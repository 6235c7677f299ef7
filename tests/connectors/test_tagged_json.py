"""The connectors' durable JSON: what is stored comes back exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.core.tagged_json import dumps, loads

money = st.decimals(allow_nan=False, allow_infinity=False, places=4,
                    min_value=Decimal("-1e9"), max_value=Decimal("1e9"))
moments = st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))]))


@given(balance=money, at=moments, volumes=st.lists(money, max_size=5))
def test_decimals_and_datetimes_come_back_exactly(balance: Decimal, at: datetime,
                                                   volumes: list[Decimal]) -> None:
    record = {"balance": balance, "deal": {"time": at, "volumes": volumes}, "n": 3}
    back = loads(dumps(record))
    assert back == record
    assert str(back["balance"]) == str(balance)  # "0.10" stays "0.10", not 0.1
    assert back["deal"]["time"].utcoffset() == at.utcoffset()


def test_a_value_it_cannot_restore_is_refused() -> None:
    with pytest.raises(TypeError, match="cannot store set"):
        dumps({"tickets": {1, 2}})
