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
from connectors.core.clock import Clock
from connectors.core.feed import Batch
from connectors.core.publish import Outgoing, Rejected
from connectors.market.parse import ParsedCandles
from connectors.market.resample import Resampler
from connectors.market.synthetic import SyntheticMarket

log = logging.getLogger(__name__)

TOPIC = "market.candles.v1"
FAST_CHUNK = 2000
#: The longest a paced synthetic feed waits before it looks at its clock again (its
#: health is reported at each poll, and a weekend wait is two days long).
MAX_WAIT = 1.0


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
    """The synthetic market as a feed, on a demo clock.

    The demo's time is the wall clock's, `speed` times faster from the start: a bar is
    published once the demo's time has reached its close, as a live feed publishes a
    closed bar. The history before the start (the warm-up: indicators are warm when the
    demo opens) is therefore published at once, in chunks. At speed 1 the demo stays on
    the wall clock, bar for bar, and waits out the weekend close as a real market does; a
    faster demo (speed > 1) jumps over a closed market instead of idling through it. A
    demo resumed after bars already ahead of the wall clock (`after`: a previous faster
    run) starts where they end. The time is kept as an anchor (wall, demo), not as a wait per bar:
    the time spent publishing does not make the demo drift behind, and after a stall
    the bars that came due are published at once.
    """

    def __init__(self, market: SyntheticMarket, speed: float | None,
                 clock: Clock | None = None, name: str = "synthetic",
                 resampler: Resampler | None = None, after: datetime | None = None) -> None:
        self.name = name
        self.market = market
        self.speed = speed or None
        self.clock = clock
        self.resampler = resampler
        #: the end of the newest bar already on the bus (a resumed demo), if any
        self.after = after
        #: (wall time, demo time) at the same instant: the demo's time is the demo time
        #: plus the wall time elapsed since, times `speed`
        self._anchor: tuple[datetime, datetime] | None = None
        self._last_open: datetime | None = None

    def event_time(self) -> datetime:
        """The open time of the last bar published (before any, of the bar before the
        first): its close is the demo's market "now"."""
        if self._last_open is not None:
            return self._last_open
        return self.market.next_time - self.market.step

    def demo_time(self, wall: datetime) -> datetime:
        """The demo's time at wall time `wall` (the anchor is set by the first poll)."""
        if self._anchor is None or self.speed is None:
            raise RuntimeError("the demo clock starts with the first poll of a paced feed")
        wall0, demo0 = self._anchor
        return demo0 + (wall - wall0) * self.speed

    def poll(self) -> Batch:
        """Every bar closed by the demo's time (a chunk at most), and the wait until the
        next one closes (unpaced: a chunk, no wait)."""
        speed, step = self.speed, self.market.step
        now = None
        if speed is not None and self.clock is not None:
            wall = self.clock()
            if self._anchor is None:  # on the wall clock, or where a demo ahead of it ended
                self._anchor = (wall, wall if self.after is None else max(wall, self.after))
            now = self.demo_time(wall)
        records: list[Outgoing] = []
        for _ in range(FAST_CHUNK // max(1, len(self.market.symbols))):
            if speed is not None and now is not None:
                now = self._over_closed_market(now, speed)
                if self.market.next_time + step > now:
                    break
            self._last_open = self.market.next_time
            bars = [bar.record for bar in self.market.next_bars()]
            if self.resampler is not None:
                bars = self.resampler.add_all(bars)
            records.extend(_out(bar) for bar in bars)
        if speed is None or now is None:
            return Batch(records, wait=0.0, source="synthetic")
        due = (self.market.next_time + step - now).total_seconds() / speed
        return Batch(records, wait=min(MAX_WAIT, max(0.0, due)), source="synthetic")

    def _over_closed_market(self, now: datetime, speed: float) -> datetime:
        """A faster demo whose next bar opens after its time (the market is closed: the
        weekend) moves its time to that open; at speed 1 the wait is the real one."""
        # a bar opens as the one before closes: the next one opening after the demo's
        # time means the market is closed until then
        ahead = self.market.next_time - now
        if speed <= 1 or ahead <= timedelta(0) or self._anchor is None:
            return now
        wall0, demo0 = self._anchor
        self._anchor = (wall0, demo0 + ahead)
        return now + ahead


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
