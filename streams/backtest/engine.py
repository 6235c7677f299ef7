"""The backtest engine: the live decision core and the paper broker over historical candles.

One `Simulation` is the whole pipeline of one account in one process, with no bus and no
database, wired exactly as the Faust worker wires it:

    candle -> IndicatorEngine -> propose (freezes the bundle, derives the idea from it)
           -> Book.on_idea (the gate: GateState decides, the decision log is sealed)
           -> auto_execute: the order goes to the paper broker at the candle's close
           -> Book.on_order_result / Book.on_account (positions, realised P/L, halts)

and the paper broker learns prices from the same candles: stops and targets are checked
on every later candle of the symbol's finest timeframe (SL first when both are inside one
bar, a gap fills at the open), a position still open `time_limit_minutes` after entry is
closed at that candle's close, and whatever is open when the data ends is closed at the
last price. Strategies are installed and halts resumed through signed control commands
(`Book.on_command`), the gate's only way in live.

Deterministic: no clock is read (the broker's clock is the candle's close), no
randomness, ids are the pipeline's uuid5 ids, so the same inputs give the same outputs.

Context: calendar events and news come from the files, known from the start (so
`calendar_last_success` is the decision time: the calendar is never stale). Without a
calendar file no release is known and no blackout applies; the report says so.
"""

from __future__ import annotations

import uuid
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.brokers.base import BrokerError, OrderTicket
from connectors.brokers.paper.config import PaperConfig
from connectors.brokers.paper.execution import PaperBroker
from connectors.brokers.paper.state import PaperDeal
from connectors.instruments import INSTRUMENTS
from streams import records
from streams.core.calendar import trading_day
from streams.core.indicators import IndicatorEngine, UpdateStatus
from streams.core.market import TIMEFRAMES, IndicatorValues
from streams.core.model import RiskConfig
from streams.core.strategy import Strategy
from streams.gatekeeper import Book, Outputs
from streams.proposals import (
    CALENDAR_AFTER,
    CALENDAR_BEFORE,
    NEWS_WINDOW,
    MarketContext,
    Proposal,
    propose,
)
from topics.commands import new_command

Record = dict[str, Any]
ISSUER = "backtest"
#: Signs the commands the simulation gives its own gate; they never leave the process.
COMMAND_KEY = b"ai-trader-backtest-in-process-key"
BACKTEST_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://ai-trader.local/backtest")
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class BacktestConfig:
    """What a run is made of besides the candles."""

    strategies: Sequence[Strategy]
    risk: RiskConfig
    initial_balance: Decimal = Decimal("10000.00")
    account: str = "backtest"
    calendar: Sequence[Record] = ()
    news: Sequence[Record] = ()
    #: symbol -> the timeframe the paper broker prices it from (its finest)
    price_timeframes: Mapping[str, str] = field(default_factory=dict)
    #: a halt (drawdown, target) is resumed at the next trading day, as a human would
    daily_resume: bool = True
    slippage_points: int = 0
    code_version: str = "backtest"


@dataclass
class Trade:
    """One position from entry to exit."""

    idea_id: str
    strategy_id: str
    symbol: str
    direction: str
    lots: Decimal
    entry_time: datetime
    entry_price: float
    stop_loss: float
    take_profit: float | None
    risk_money: Decimal  # what the stop would lose, in account currency
    exit_time: datetime | None = None
    exit_price: float | None = None
    exit_reason: str | None = None  # sl, tp, time, end
    pl: Decimal = ZERO

    @property
    def planned_rr(self) -> float | None:
        """Reward to risk of the first take-profit, from the fill price."""
        risk = abs(self.entry_price - self.stop_loss)
        if self.take_profit is None or risk <= 0:
            return None
        return abs(self.take_profit - self.entry_price) / risk

    @property
    def r_multiple(self) -> float | None:
        """P/L in units of the money at risk."""
        return None if self.risk_money <= 0 else float(self.pl / self.risk_money)


@dataclass
class IdeaRow:
    """An idea and what the gate did with it (its latest status)."""

    idea_id: str
    created_at: datetime
    symbol: str
    timeframe: str
    strategy_id: str
    direction: str
    entry_price: float
    stop_loss: float
    take_profit: tuple[float, ...]
    lots: Decimal
    confidence: Decimal
    decision_id: str
    action: str
    outcome: str
    risk_check_result: str
    status: str


@dataclass(frozen=True)
class DecisionRow:
    """The columns of a decision the report lists (the full event goes to the listener)."""

    decision_id: str
    occurred_at: datetime
    action: str
    outcome: str | None
    risk_check_result: str | None
    trade_idea_id: str | None
    strategy_id: str | None
    symbol: str | None
    confidence: Decimal | None
    rationale: str


@dataclass
class Step:
    """What one candle did: its indicators, the decisions and exits it caused, the equity."""

    candle: Record
    status: UpdateStatus
    values: IndicatorValues | None
    decisions: list[DecisionRow] = field(default_factory=list)
    exits: list[Trade] = field(default_factory=list)
    equity: Decimal | None = None


#: Called with every decision event (as the gate built it) and, for ideas, its bundle.
Listener = Callable[[Record, Record | None], None]


@dataclass
class Result:
    """Everything a run produced, for the report."""

    config: BacktestConfig
    ideas: dict[str, IdeaRow] = field(default_factory=dict)
    decisions: list[DecisionRow] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    #: equity after each priced candle: epoch seconds and amounts (floats, for charts)
    equity_times: array[float] = field(default_factory=lambda: array("d"))
    equity: array[float] = field(default_factory=lambda: array("d"))
    #: closes of each symbol's priced candles (epoch seconds, price), for the price chart
    prices: dict[str, tuple[array[float], array[float]]] = field(default_factory=dict)
    peak_equity: Decimal = ZERO
    max_drawdown: Decimal = ZERO  # largest fall from a peak, in account currency
    max_drawdown_pct: Decimal = ZERO  # ... and as a percentage of that peak
    first_time: datetime | None = None
    last_time: datetime | None = None
    candles: int = 0
    candles_skipped: int = 0
    orders_refused: list[str] = field(default_factory=list)
    final_balance: Decimal = ZERO


def _deal_reason(deal: PaperDeal) -> str:
    return {"sl": "sl", "tp": "tp"}.get(deal.reason, deal.reason or "exit")


class Simulation:
    """Feed candles with `step()` in replay order, then `finish()` (see the module doc)."""

    def __init__(self, config: BacktestConfig, listener: Listener | None = None) -> None:
        self.config = config
        self.listener = listener
        self.result = Result(config)
        self._now = datetime(1970, 1, 1, tzinfo=UTC)  # replaced by the first candle
        self._broker_configs = {
            tf: PaperConfig(account=config.account, initial_balance=config.initial_balance,
                            slippage_points=config.slippage_points, price_timeframe=tf,
                            state_file=None, max_history=1000)
            for tf in sorted(set(config.price_timeframes.values()) or {"M1"})
        }
        self.broker = PaperBroker(next(iter(self._broker_configs.values())), clock=self._clock)
        self.book = Book.new(config.account, config.risk, config.code_version)
        self.engines: dict[tuple[str, str], IndicatorEngine] = {}
        self.latest: dict[tuple[str, str], Record] = {}
        self._open: dict[int, Trade] = {}
        self._time_limits: dict[int, datetime] = {}
        self._realised: dict[date, Decimal] = {}
        self._bundles: dict[str, Record] = {}
        self._day: date | None = None
        self._calendar = list(config.calendar)
        self._calendar_times = [e["event_time"] for e in self._calendar]
        self._news = list(config.news)
        self._news_times = [n["published_at"] for n in self._news]
        self._windows: dict[str, tuple[tuple[int, int], tuple[Record, ...]]] = {}
        self._for: dict[tuple[str, str], list[Strategy]] = {}
        self._started = False

    # ------------------------------------------------------------------- plumbing

    def _clock(self) -> datetime:
        return self._now

    def _command(self, kind: str, at: datetime, **kw: Any) -> None:
        ident = str(uuid.uuid5(BACKTEST_NAMESPACE, f"{self.config.account}|{kind}|"
                                                    f"{at.isoformat()}|{kw.get('strategy_id')}"))
        command = new_command(kind, self.config.account, ISSUER, COMMAND_KEY, now=at,
                              command_id=ident, **kw)
        out = self.book.on_command(command, COMMAND_KEY, at)
        if out.refusals:
            raise RuntimeError(f"the simulated gate refused {kind}: {out.refusals[0]}")
        self._absorb(out)

    def _start(self, at: datetime) -> None:
        """Install the strategies through the gate, as the worker seeds them."""
        self._started = True
        for strategy in self.config.strategies:
            self._command("put_strategy", at, strategy_id=strategy.strategy_id,
                          payload={"definition": strategy.definition()})

    def _strategies_for(self, symbol: str, timeframe: str) -> list[Strategy]:
        key = (symbol, timeframe)
        found = self._for.get(key)
        if found is None:
            found = [s for s in self.config.strategies
                     if s.is_active and s.allows_symbol(symbol) and s.allows_timeframe(timeframe)]
            self._for[key] = found
        return found

    def _window(self, name: str, times: list[datetime], items: list[Record],
                low: datetime, high: datetime) -> tuple[Record, ...]:
        """Items with a time in [low, high], a superset `propose` narrows down (cached)."""
        bounds = (bisect_left(times, low), bisect_right(times, high))
        cached = self._windows.get(name)
        if cached is None or cached[0] != bounds:
            cached = (bounds, tuple(items[bounds[0]:bounds[1]]))
            self._windows[name] = cached
        return cached[1]

    # ------------------------------------------------------------------- account

    def _position_record(self, ticket: int) -> Record:
        pos = self.broker.state.positions[ticket]
        trade = self._open.get(ticket)
        return {
            "ticket": pos.ticket, "symbol": pos.symbol, "direction": pos.direction,
            "volume": pos.volume, "entry_price": pos.entry_price, "stop_loss": pos.stop_loss,
            "take_profit": list(pos.take_profit), "unrealized_pl": self.broker.unrealized(pos),
            "opened_at": pos.opened_at, "idea_id": trade.idea_id if trade else None,
            "strategy_id": trade.strategy_id if trade else None, "magic": pos.magic,
        }

    def account_record(self, at: datetime) -> Record:
        """The `account.state.v1` record of the simulated account at `at`."""
        broker = self.broker
        open_pl, used = broker.open_pl(), broker.margin_used()
        equity = broker.state.balance + open_pl
        return {
            "account": self.config.account, "broker": "paper", "currency": "USD",
            "balance": broker.state.balance, "equity": equity, "margin_used": used,
            "margin_free": equity - used, "open_pl": open_pl,
            "realized_pl_today": self._realised.get(at.date(), ZERO),
            "positions": [self._position_record(t) for t in sorted(broker.state.positions)],
            "reconciled": True, "captured_at": at,
        }

    def _sync_account(self, at: datetime) -> None:
        self._absorb(self.book.on_account(self.account_record(at)))

    # ------------------------------------------------------------------- decisions

    def _absorb(self, out: Outputs) -> list[DecisionRow]:
        rows = []
        for event in out.decisions:
            row = DecisionRow(
                event["decision_id"], event["occurred_at"], event["action"], event["outcome"],
                event["risk_check_result"], event["trade_idea_id"], event["strategy_id"],
                event["symbol"], event["confidence"], event["rationale"])
            rows.append(row)
            self.result.decisions.append(row)
            if self.listener is not None:
                ref = event.get("snapshot_ref")
                self.listener(event, self._bundles.get(ref) if ref else None)
        for status in out.statuses:
            idea = self.result.ideas.get(status["idea_id"])
            if idea is not None:
                idea.status = status["status"]
        return rows

    def _decide(self, proposal: Proposal, at: datetime) -> list[DecisionRow]:
        bundle = proposal.bundle
        self._bundles[bundle["snapshot_id"]] = bundle
        out = self.book.on_idea({"account": self.config.account, "idea": proposal.idea_record,
                                 "bundle": bundle, "command": None}, [])
        main = next((d for d in out.decisions if d["trade_idea_id"] == proposal.idea.idea_id
                     and d["outcome"] is not None), None)
        if main is not None:
            idea = proposal.idea
            self.result.ideas[idea.idea_id] = IdeaRow(
                idea.idea_id, idea.created_at, idea.symbol, idea.timeframe, idea.strategy_id,
                idea.direction, idea.entry_price, idea.stop_loss, idea.take_profit,
                idea.lot_size, proposal.confidence.score, main["decision_id"], main["action"],
                main["outcome"], main["risk_check_result"], "decided")
        rows = self._absorb(out)
        del self._bundles[bundle["snapshot_id"]]
        for order in out.orders:
            self._execute(order, proposal, at)
        return rows

    def _execute(self, order: Record, proposal: Proposal, at: datetime) -> None:
        ticket = OrderTicket(
            request_id=order["request_id"], comment=order["idea_id"][:31],
            symbol=order["symbol"], direction=order["direction"], order_type="market",
            volume=order["lot_size"], stop_loss=order["stop_loss"],
            take_profit=tuple(order["take_profit"]))
        result: Record = {
            "request_id": order["request_id"], "idea_id": order["idea_id"],
            "account": self.config.account, "broker": "paper", "broker_order_id": None,
            "broker_deal_id": None, "position_ticket": None, "filled_price": None,
            "filled_volume": None, "retcode": None, "error_code": None, "executed_at": at}
        try:
            done = self.broker.place(ticket)
        except BrokerError as exc:
            result.update(status=exc.status, error_code=exc.error_code, message=str(exc))
            self.result.orders_refused.append(f"{at.isoformat()} {order['idea_id']}: "
                                              f"{exc.error_code}: {exc}")
            self._absorb(self.book.on_order_result(result))
            return
        result.update(status=done.status, broker_order_id=done.order_id,
                      broker_deal_id=done.deal_id, position_ticket=done.position_ticket,
                      filled_price=done.price, filled_volume=done.volume, message=done.message)
        self._absorb(self.book.on_order_result(result))
        if done.position_ticket is not None and done.price is not None:
            self._opened(done.position_ticket, done.price, order, proposal, at)
        self._sync_account(at)

    def _opened(self, position: int, price: float, order: Record, proposal: Proposal,
                at: datetime) -> None:
        inst = INSTRUMENTS[order["symbol"]]
        lots = Decimal(order["lot_size"])
        risk = Decimal(str(abs(price - order["stop_loss"]))) * lots * inst.contract_size
        take_profit = order["take_profit"][0] if order["take_profit"] else None
        self._open[position] = Trade(
            order["idea_id"], order["strategy_id"] or "", order["symbol"], order["direction"],
            lots, at, price, order["stop_loss"], take_profit, risk.quantize(Decimal("0.01")))
        self._time_limits[position] = at + timedelta(minutes=proposal.idea.time_limit_minutes)

    # ------------------------------------------------------------------- exits

    def _closed(self, deal: PaperDeal, reason: str) -> Trade | None:
        trade = self._open.pop(deal.position_ticket, None)
        self._time_limits.pop(deal.position_ticket, None)
        day = deal.time.date()
        self._realised[day] = self._realised.get(day, ZERO) + deal.profit
        if trade is None:
            return None
        trade.exit_time, trade.exit_price = deal.time, deal.price
        trade.exit_reason, trade.pl = reason, deal.profit
        self.result.trades.append(trade)
        return trade

    def _exits(self, symbol: str, candle: Record, at: datetime) -> list[Trade]:
        exits = [t for deal in self.broker.on_candle(candle) if deal.entry == "out"
                 and (t := self._closed(deal, _deal_reason(deal))) is not None]
        for ticket, limit in sorted(self._time_limits.items()):
            pos = self.broker.state.positions.get(ticket)
            if pos is not None and pos.symbol == symbol and at >= limit:
                self.broker.close(ticket)
                deal = self.broker.state.deals[-1]
                trade = self._closed(deal, "time")
                if trade is not None:
                    exits.append(trade)
        return exits

    def _daily_resume(self, at: datetime) -> None:
        cfg = self.book.state.config
        day = trading_day(at, cfg.trading_day_start, cfg.trading_day_tz)
        if day == self._day:
            return
        self._day = day
        state = self.book.state
        if (self.config.daily_resume and self.config.risk.ai_trading_enabled
                and (state.halted or state.kill.active)):
            self._command("resume", at, reason="backtest: resumed at the start of a new "
                                                "trading day")

    # ------------------------------------------------------------------- the loop

    def step(self, candle: Record) -> Step:
        """One closed candle (in replay order): prices, exits, indicators, ideas, decisions."""
        symbol, timeframe = candle["symbol"], candle["timeframe"]
        at = candle["open_time"] + TIMEFRAMES[timeframe]
        if at < self._now and self._started:
            raise ValueError(f"candle {symbol} {timeframe} {candle['open_time']} is out of "
                             "order (feed candles sorted by close time)")
        self._now = at
        if not self._started:
            self._start(at)
            self.result.first_time = candle["open_time"]
            self.result.peak_equity = self.config.initial_balance
        self.result.last_time = at
        self._daily_resume(at)
        self.result.candles += 1
        priced = self.config.price_timeframes.get(symbol) == timeframe
        exits: list[Trade] = []
        if priced:
            self.broker.config = self._broker_configs[timeframe]
            exits = self._exits(symbol, candle, at)
            if exits or self._open:
                self._sync_account(at)
        key = (symbol, timeframe)
        engine = self.engines.get(key)
        if engine is None:
            engine = self.engines[key] = IndicatorEngine(symbol, timeframe)
        update = engine.update(records.candle(candle))
        step = Step(candle, update.status, update.values, exits=exits)
        if update.values is not None:
            self._evaluate(step, candle, update.values, at)
        else:
            self.result.candles_skipped += 1
        if priced:
            step.equity = self.broker.equity()
            self._track(symbol, candle["close"], at, step.equity)
        return step

    def _track(self, symbol: str, close: float, at: datetime, equity: Decimal) -> None:
        r = self.result
        stamp = at.timestamp()
        r.equity_times.append(stamp)
        r.equity.append(float(equity))
        series = r.prices.get(symbol)
        if series is None:
            series = r.prices[symbol] = (array("d"), array("d"))
        series[0].append(stamp)
        series[1].append(close)
        if equity > r.peak_equity:
            r.peak_equity = equity
        fall = r.peak_equity - equity
        if fall > r.max_drawdown:
            r.max_drawdown = fall
            r.max_drawdown_pct = (fall * 100 / r.peak_equity).quantize(Decimal("0.01"))

    def _evaluate(self, step: Step, candle: Record, values: IndicatorValues,
                  at: datetime) -> None:
        snapshot = records.indicators_record(values, None, None)
        self.latest[(values.symbol, values.timeframe)] = snapshot
        strategies = self._strategies_for(values.symbol, values.timeframe)
        if not strategies:
            return
        ctx = MarketContext(
            account_id=self.config.account, code_version=self.config.code_version,
            calendar=self._window("calendar", self._calendar_times, self._calendar,
                                  at - CALENDAR_BEFORE, at + CALENDAR_AFTER),
            calendar_last_success=at,
            news=self._window("news", self._news_times, self._news, at - NEWS_WINDOW, at),
            account=self.account_record(at), latest=self.latest)
        for strategy in strategies:
            proposal = propose(strategy, candle, snapshot, ctx)
            if proposal is not None:
                step.decisions.extend(self._decide(proposal, at))

    def finish(self) -> Result:
        """Close what is still open at the last price, and return the result."""
        for ticket in sorted(self._open):
            if ticket in self.broker.state.positions:
                self.broker.close(ticket)
                self._closed(self.broker.state.deals[-1], "end")
        if self._started:
            self._sync_account(self._now)
        self.result.final_balance = self.broker.state.balance
        return self.result


def price_timeframes(candles: Sequence[Record]) -> dict[str, str]:
    """The finest timeframe of each symbol: the paper broker prices it from that one."""
    out: dict[str, str] = {}
    for c in candles:
        current = out.get(c["symbol"])
        if current is None or TIMEFRAMES[c["timeframe"]] < TIMEFRAMES[current]:
            out[c["symbol"]] = c["timeframe"]
    return out


def with_price_timeframes(config: BacktestConfig, candles: Sequence[Record]) -> BacktestConfig:
    """`config` with the price timeframe of each symbol found in `candles`."""
    return replace(config, price_timeframes=price_timeframes(candles))
