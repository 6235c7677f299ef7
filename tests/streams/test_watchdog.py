"""The worker's stall rule (streams/watchdog.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.watchdog import Stall, lag_of, stalls

TOPICS = {"market": ("market.candles.v1",),
          "gate": ("gate.inbox.v1", "account.state.v1", "orders.results.v1")}


def test_an_agent_with_records_waiting_and_no_progress_past_the_limit_stalls() -> None:
    lag = {"gate.inbox.v1": 3, "orders.results.v1": 2, "market.candles.v1": 0}
    got = stalls(lag, TOPICS, {"market": 0.0, "gate": 0.0}, now=121.0, limit=120.0)
    assert got == [Stall("gate", 5, 121.0)]
    assert str(got[0]) == "agent gate: 5 records waiting, nothing processed for 121 s"


def test_recent_progress_or_nothing_waiting_is_not_a_stall() -> None:
    assert stalls({"market.candles.v1": 50}, TOPICS, {"market": 10.0, "gate": 0.0},
                  now=129.0, limit=120.0) == []  # 119 s idle: within the limit
    assert stalls({}, TOPICS, {"market": 0.0, "gate": 0.0}, now=10_000.0, limit=120.0) == []
    # lag on a topic no agent reads (a changelog) does not count
    assert stalls({"x-changelog": 9}, TOPICS, {"market": 0.0}, now=500.0, limit=1.0) == []


@given(lag=st.dictionaries(st.sampled_from(["market.candles.v1", "gate.inbox.v1",
                                            "account.state.v1", "orders.results.v1"]),
                           st.integers(0, 10**6)),
       market=st.floats(0, 1000), gate=st.floats(0, 1000), now=st.floats(0, 2000),
       limit=st.floats(0.1, 500))
def test_a_stall_is_exactly_waiting_records_and_idle_past_the_limit(
        lag: dict[str, int], market: float, gate: float, now: float, limit: float) -> None:
    progress = {"market": market, "gate": gate}
    got = {s.agent: s for s in stalls(lag, TOPICS, progress, now, limit)}
    for agent, reads in TOPICS.items():
        waiting = sum(lag.get(t, 0) for t in reads)
        idle = now - progress[agent]
        assert (agent in got) == (waiting > 0 and idle > limit)
        if agent in got:
            assert (got[agent].waiting, got[agent].idle) == (waiting, idle)



def test_records_the_consumer_has_not_fetched_are_waiting() -> None:
    # the consumer's last fetch response said 40, the log holds 41 (one idea behind)
    got = lag_of(ends={"inbox-0": 41, "candles-0": 500}, highwaters={"inbox-0": 40,
                                                                       "candles-0": None},
                 committed={"inbox-0": 40, "candles-0": 480})
    assert got == {"inbox-0": 1, "candles-0": 20}
    # no answer from the broker: the consumer's own view, as before
    assert lag_of({}, {"inbox-0": 40}, {"inbox-0": 38}) == {"inbox-0": 2}
    # never committed, never fetched: everything in the log waits
    assert lag_of({"inbox-0": 7}, {"inbox-0": None}, {}) == {"inbox-0": 7}
    # committed ahead of a stale view is not negative
    assert lag_of({"inbox-0": 5}, {"inbox-0": 5}, {"inbox-0": 9}) == {"inbox-0": 0}
