"""Market feeds: file replay at a chosen speed, the synthetic market, live MT5 closed bars.

Speed: `None` or 0 is as fast as possible (chunks, no wait), 1.0 is real time,
N is N times real time: the wait between two bar times is their distance / N.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from connectors.brokers.mt5.client import Mt5Session
from connectors.brokers.mt5.parse import TIMEFRAME_CODES, rates_to_candles, server_time
from connectors.core.feed import Batch
from connectors.core.publish import Outgoing, Rejected
from connectors.market.parse import ParsedCandles
from connectors.market.resample import Resampler
from connectors.market.synthetic import SyntheticMarket

log = logging.getLogger(__name__)

TOPIC = "market.candles.v1"
FAST_CHUNK = 2000


def _out(candle: dict[str, Any]) -> Outgoing:
    return Outgoing(TOPIC, candle["symbol"], candle)


class ReplayFeed:
    """Candles from a parsed file, in time order, paced by `speed`."""

    def __init__(self, name: str, parsed: ParsedCandles, source: str,
                 speed: float | None = None) -> None:
        self.name = name
        self.source = source
        self.speed = speed or None
        candles = sorted(parsed.candles, key=lambda c: c["open_time"])
        self._groups = [list(g) for _, g in groupby(candles, key=lambda c: c["open_time"])]
        self._index = 0
        self._rejects = [
            Rejected(TOPIC, e.raw.encode("utf-8", "replace"),
                     ValueError(f"line {e.line}: {e.reason}"), source)
            for e in parsed.errors
        ]

    def poll(self) -> Batch:
        """The next bar time (or a chunk when unpaced), and the wait until the one after."""
        rejects, self._rejects = self._rejects, []
        if self._index >= len(self._groups):
            return Batch(rejects=rejects, done=True, source=self.source)
        if self.speed is None:
            groups = self._groups[self._index:self._index + FAST_CHUNK]
            self._index += len(groups)
            records = [_out(c) for g in groups for c in g]
            return Batch(records, rejects, wait=0.0, done=self._index >= len(self._groups),
                         source=self.source)
        group = self._groups[self._index]
        self._index += 1
        wait = 0.0
        if self._index < len(self._groups):
            gap: timedelta = self._groups[self._index][0]["open_time"] - group[0]["open_time"]
            wait = gap.total_seconds() / self.speed
        return Batch([_out(c) for c in group], rejects, wait=wait,
                     done=self._index >= len(self._groups), source=self.source)


class SyntheticFeed:
    """The synthetic market as a feed.

    It first catches up quickly from its start to `catch_up_to` (so indicators
    are warm when the demo opens), then advances one bar per `bar / speed`
    seconds of wall time.
    """

    def __init__(self, market: SyntheticMarket, speed: float | None,
                 catch_up_to: datetime | None = None, name: str = "synthetic",
                 resampler: Resampler | None = None) -> None:
        self.name = name
        self.market = market
        self.speed = speed or None
        self.catch_up_to = catch_up_to
        self.resampler = resampler

    def event_time(self) -> datetime:
        """The open time of the last bar published (the demo's "now")."""
        return self.market.next_time - self.market.step

    def poll(self) -> Batch:
        """Bars of one time step (a chunk while catching up or unpaced)."""
        fast = self.speed is None or (self.catch_up_to is not None
                                      and self.market.next_time < self.catch_up_to)
        steps = FAST_CHUNK // max(1, len(self.market.symbols)) if fast else 1
        records: list[Outgoing] = []
        for _ in range(steps):
            bars = [bar.record for bar in self.market.next_bars()]
            if self.resampler is not None:
                bars = self.resampler.add_all(bars)
            records.extend(_out(bar) for bar in bars)
            if self.catch_up_to is not None and self.market.next_time >= self.catch_up_to \
                    and self.speed is not None:
                break
        wait = 0.0 if fast or self.speed is None else \
            self.market.step.total_seconds() / self.speed
        return Batch(records, wait=wait, source="synthetic")


class Mt5CandleFeed:
    """Closed bars from a live MT5 terminal.

    `copy_rates_from_pos(symbol, tf, 0, n)` returns the last n bars oldest first;
    the last one is still forming and MT5 sends it again and again, so it is
    never published. The last published open time per (symbol, timeframe)
    keeps every closed bar published exactly once per run; on start, `backfill`
    closed bars are published so indicators warm up. The newest closed bar gets
    the current spread from `symbol_info_tick` (ask - bid); older ones the bar's
    own spread in points times the symbol's point.
    """

    def __init__(self, session: Mt5Session, symbols: Sequence[str], timeframes: Sequence[str],
                 server_tz: Any, backfill: int = 1, name: str = "mt5-market") -> None:
        unknown = [tf for tf in timeframes if tf not in TIMEFRAME_CODES]
        if unknown:
            raise ValueError(f"unknown timeframes {unknown}")
        self.name = name
        self.session = session
        self.symbols = tuple(symbols)
        self.timeframes = tuple(timeframes)
        self.server_tz = server_tz
        self.backfill = max(1, backfill)
        self.last_open: dict[tuple[str, str], datetime] = {}

    def poll(self) -> Batch:
        """Newly closed bars of every configured symbol and timeframe."""
        records: list[Outgoing] = []
        for symbol in self.symbols:
            info = self.session.call("symbol_info", symbol)
            if info is None:
                raise RuntimeError(f"symbol {symbol} unknown to the terminal")
            for timeframe in self.timeframes:
                records.extend(self._closed(symbol, timeframe, float(info.point)))
        return Batch(records, source="mt5")

    def _closed(self, symbol: str, timeframe: str, point: float) -> list[Outgoing]:
        key = (symbol, timeframe)
        count = self.backfill + 1 if key not in self.last_open else 50
        rates = self.session.call("copy_rates_from_pos", symbol, TIMEFRAME_CODES[timeframe], 0,
                                  count)
        if rates is None or len(rates) < 2:
            return []
        closed = rates_to_candles(rates[:-1], symbol, timeframe, point, self.server_tz)
        last = self.last_open.get(key)
        new = [c for c in closed if last is None or c["open_time"] > last]
        if not new:
            return []
        tick = self.session.call("symbol_info_tick", symbol)
        if tick is not None and tick.ask >= tick.bid:
            new[-1] = {**new[-1], "spread": round(float(tick.ask) - float(tick.bid), 10)}
        self.last_open[key] = new[-1]["open_time"]
        return [_out(c) for c in new]


def mt5_epoch_to_utc(server_tz: Any) -> Callable[[int], datetime]:
    """A converter for MT5 timestamps in a given server timezone."""
    return lambda seconds: server_time(seconds, server_tz)
