"""The Avro single-object codec, without a broker."""

from __future__ import annotations

import io
import math
import struct
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import fastavro
import pytest
from fastavro.utils import generate_many
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import factories
from topics import validators
from topics.catalog import Catalog
from topics.codec import (
    MAGIC,
    AvroCodec,
    CorruptRecord,
    Encoded,
    InvalidRecord,
    SchemaRegistry,
    UnknownFingerprint,
    default_registry,
    direct_write,
    plain_read,
)

EMPTY = 0xC15D213AA4D7A795


def _rabin_table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (EMPTY & -(fp & 1))
        table.append(fp & 0xFFFFFFFFFFFFFFFF)
    return table


def crc64_avro(data: bytes) -> int:
    """The Avro spec's reference fingerprint algorithm, written out independently."""
    table, fp = _rabin_table(), EMPTY
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog()


def test_header_is_marker_and_little_endian_spec_fingerprint(catalog: Catalog) -> None:
    codec = catalog.codec("market.candles.v1")
    data = codec.encode(factories.candle())
    expected_fp = struct.pack("<Q", crc64_avro(codec.schema.canonical.encode()))
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == expected_fp


def test_spec_test_vector_for_int_schema() -> None:
    # Avro's schema fingerprint test vectors: "int" -> 0x7275d51a3f395c8f (as a Java long)
    assert crc64_avro(b'"int"') == 0x7275D51A3F395C8F


@pytest.mark.parametrize(
    ("logical", "factory"),
    [
        ("market.candles.v1", factories.candle),
        ("market.indicators.v1", factories.indicator_snapshot),
        ("calendar.events.v1", factories.calendar_event),
        ("news.items.v1", factories.news_item),
        ("account.state.v1", factories.account_state),
        ("snapshots.bundles.v1", factories.snapshot_bundle),
    ],
)
def test_record_round_trips_field_by_field(catalog: Catalog, logical: str, factory) -> None:
    record = factory()
    assert catalog.codec(logical).decode(catalog.codec(logical).encode(record)) == record


def test_gate_inbox_carries_an_idea_with_its_bundle(catalog: Catalog) -> None:
    codec = catalog.codec("gate.inbox.v1")
    msg = {"account": "paper-1", "idea": factories.trade_idea(),
           "bundle": factories.snapshot_bundle(), "command": None}
    assert codec.decode(codec.encode(msg)) == msg


def test_gate_inbox_refuses_idea_and_command_together(catalog: Catalog) -> None:
    msg = {"account": "paper-1", "idea": factories.trade_idea(),
           "bundle": factories.snapshot_bundle(), "command": factories.control_command()}
    with pytest.raises(InvalidRecord, match="exactly one"):
        catalog.codec("gate.inbox.v1").encode(msg)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("close", math.nan, "not finite"),
        ("high", math.inf, "not finite"),
        ("low", -1.0, "must be positive"),
        ("timeframe", "M7", "timeframe must be one of"),
        ("symbol", "", "symbol is empty"),
        ("volume", -5, "volume is negative"),
    ],
)
def test_hostile_candle_is_refused_with_reason(
    catalog: Catalog, field: str, value: object, reason: str
) -> None:
    with pytest.raises(InvalidRecord, match=reason):
        catalog.codec("market.candles.v1").encode(factories.candle(**{field: value}))


def test_high_below_low_is_refused(catalog: Catalog) -> None:
    bad = factories.candle(high=10.0, low=11.0, open=10.5, close=10.5)
    with pytest.raises(InvalidRecord, match="high 10.0 < low 11.0"):
        catalog.codec("market.candles.v1").encode(bad)


def test_money_with_more_decimals_than_the_schema_is_refused(catalog: Catalog) -> None:
    with pytest.raises(InvalidRecord, match="account.AccountState"):
        catalog.codec("account.state.v1").encode(
            factories.account_state(balance=Decimal("12000.005"))
        )


def test_missing_field_is_refused_not_defaulted(catalog: Catalog) -> None:
    record = factories.candle()
    del record["close"]
    with pytest.raises(InvalidRecord):
        catalog.codec("market.candles.v1").encode(record)


def test_decoding_garbage_raises_corrupt_record(catalog: Catalog) -> None:
    codec = catalog.codec("market.candles.v1")
    for data in (b"", b"\x00\x01\x02", b"not avro at all", None):
        with pytest.raises(CorruptRecord):
            codec.decode(data)


def test_truncated_body_raises_corrupt_record(catalog: Catalog) -> None:
    codec = catalog.codec("market.candles.v1")
    data = codec.encode(factories.candle())
    with pytest.raises(CorruptRecord):
        codec.decode(data[:-6])


def test_unknown_fingerprint_is_reported_as_such(catalog: Catalog) -> None:
    codec = catalog.codec("market.candles.v1")
    data = codec.encode(factories.candle())
    with pytest.raises(UnknownFingerprint, match="unknown schema fingerprint"):
        codec.decode(MAGIC + b"\x01" * 8 + data[10:])


def test_record_of_another_type_is_refused_on_this_topic(catalog: Catalog) -> None:
    data = catalog.codec("news.items.v1").encode(factories.news_item())
    with pytest.raises(InvalidRecord, match="carries ai_trader.market.Candle"):
        catalog.codec("market.candles.v1").decode(data)


def test_decoded_hostile_values_fail_validation(catalog: Catalog) -> None:
    registry = default_registry()
    raw = AvroCodec(registry, "ai_trader.market.Candle")  # no topic rules: writes anything
    data = raw.encode(factories.candle(close=math.nan))
    with pytest.raises(InvalidRecord, match="close is not finite"):
        catalog.codec("market.candles.v1").decode(data)


def _write(writer, record: dict) -> bytes:
    buf = io.BytesIO()
    buf.write(MAGIC + writer.fingerprint)
    fastavro.schemaless_writer(buf, writer.parsed, record)
    return buf.getvalue()


def test_candle_written_with_v1_decodes_with_current_reader(catalog: Catalog) -> None:
    registry = default_registry()
    v1 = next(v for v in registry.all_versions("ai_trader.market.Candle") if v.version == 1)
    old = {k: v for k, v in factories.candle().items() if k not in ("spread", "closed")}
    decoded = catalog.codec("market.candles.v1").decode(_write(v1, old))
    assert decoded == {**old, "spread": 0.0, "closed": True}


def test_every_kept_writer_version_decodes_with_the_current_reader() -> None:
    registry = default_registry()
    checked = 0
    for name in registry.names():
        reader = AvroCodec(registry, name)
        current_fields = {f["name"] for f in reader.schema.parsed["fields"]}
        for writer in registry.all_versions(name):
            for record in generate_many(writer.parsed, 3):
                data = _write(writer, record)
                as_written = fastavro.schemaless_reader(io.BytesIO(data[10:]), writer.parsed, None)
                decoded = reader.decode(data)
                assert set(decoded) == current_fields
                for key in set(as_written) & current_fields:
                    assert _same(decoded[key], as_written[key]), (name, writer.version, key)
                checked += 1
    assert checked >= 3 * len(registry.names())


def _same(a: object, b: object) -> bool:
    """Equal, treating NaN as equal to NaN at any depth (random doubles include NaN)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        # the reader may add fields (with defaults) to nested records of older writers
        return b.keys() <= a.keys() and all(_same(a[k], b[k]) for k in b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_bundle_written_with_old_candle_inside_still_decodes() -> None:
    registry = default_registry()
    writers = registry.all_versions("ai_trader.audit.SnapshotBundle")
    assert len(writers) == 2  # one per kept Candle version
    old_writer = next(w for w in writers if w.fingerprint != registry.latest(w.name).fingerprint)
    bundle = factories.snapshot_bundle()
    bundle["candle"] = {k: v for k, v in bundle["candle"].items() if k not in ("spread", "closed")}
    decoded = Catalog().codec("snapshots.bundles.v1").decode(_write(old_writer, bundle))
    assert decoded["candle"]["spread"] == 0.0


def test_registry_refuses_file_name_that_disagrees_with_schema(tmp_path) -> None:
    (tmp_path / "ai_trader.x.A.v1.avsc").write_text(
        '{"type":"record","name":"B","namespace":"ai_trader.x","fields":[]}'
    )
    with pytest.raises(ValueError, match="declares ai_trader.x.B"):
        SchemaRegistry(tmp_path)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_fuzzed_bytes_never_escape_as_anything_but_codec_errors(data: bytes) -> None:
    codec = Catalog().codec("market.candles.v1")
    try:
        codec.decode(data)
    except (CorruptRecord, UnknownFingerprint, InvalidRecord):
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=120))
def test_fuzzed_body_behind_a_valid_header_is_caught(body: bytes) -> None:
    codec = Catalog().codec("market.candles.v1")
    try:
        record = codec.decode(MAGIC + codec.schema.fingerprint + body)
    except (CorruptRecord, InvalidRecord):
        return
    validators.candle(record)  # anything that decodes has passed the topic's rules


def _body(parsed: object, record: dict) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, record)
    return buf.getvalue()


def _read_both(parsed: object, body: bytes) -> tuple[object, object]:
    """(fastavro with its logical readers, the codec's plain read) -- or the error type."""
    plan = plain_read(parsed)
    assert plan is not None
    try:
        reference: object = fastavro.schemaless_reader(io.BytesIO(body), parsed, None)
    except (OverflowError, ValueError) as exc:
        reference = type(exc)
    try:
        fast: object = fastavro.schemaless_reader(io.BytesIO(body), plan.parsed, None)
        plan.convert(fast)  # type: ignore[arg-type]
    except (OverflowError, ValueError) as exc:
        fast = type(exc)
    return reference, fast


def test_the_plain_timestamp_read_gives_what_fastavro_gives_for_every_schema() -> None:
    registry = default_registry()
    planned = []
    for name in registry.names():
        latest = registry.latest(name)
        if plain_read(latest.parsed) is None:
            continue
        planned.append(name)
        for record in generate_many(latest.parsed, 100):
            reference, fast = _read_both(latest.parsed, _body(latest.parsed, record))
            assert _same(fast, reference), name
    assert "ai_trader.market.Candle" in planned
    assert "ai_trader.market.IndicatorSnapshot" in planned


def test_schemas_with_nested_or_other_logical_types_keep_fastavros_read() -> None:
    registry = default_registry()
    assert plain_read(registry.latest("ai_trader.account.AccountState").parsed) is None
    assert plain_read(registry.latest("ai_trader.audit.DecisionEvent").parsed) is None


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-(2**63), max_value=2**63 - 1),
       st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1)))
def test_any_timestamp_value_reads_the_same_both_ways(micros: int, optional: int | None) -> None:
    schema = fastavro.parse_schema({
        "type": "record", "name": "T", "fields": [
            {"name": "a", "type": {"type": "long", "logicalType": "timestamp-micros"}},
            {"name": "b", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}]},
            {"name": "c", "type": "string"}]})
    plain = fastavro.parse_schema({"type": "record", "name": "T", "fields": [
        {"name": "a", "type": "long"}, {"name": "b", "type": ["null", "long"]},
        {"name": "c", "type": "string"}]})
    body = _body(plain, {"a": micros, "b": optional, "c": "x"})
    reference, fast = _read_both(schema, body)
    assert reference == fast


_EDGES = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, -1.0, 1.0, 2.0, 3.0, 5e-324])


@settings(max_examples=600, deadline=None)
@given(st.lists(_EDGES | st.floats(), min_size=5, max_size=5), st.integers(-2, 2))
def test_the_candle_check_refuses_exactly_what_its_rules_refuse(
        prices: list[float], volume: int) -> None:
    o, h, low, c, spread = prices
    record = factories.candle(open=o, high=h, low=low, close=c, spread=spread, volume=volume)

    def outcome(check) -> str | None:
        try:
            check(record)
        except InvalidRecord as exc:
            return str(exc)
        return None

    assert outcome(validators.candle) == outcome(validators.candle_rules)


# ---------------------------------------------------------------- the direct writer

_LONGS = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_INTS = st.integers(min_value=-(2**31), max_value=2**31 - 1)
#: aware datetimes in any offset, before and after the epoch, whose microseconds fit a long
_AWARE = st.builds(
    lambda moment, minutes: moment.replace(tzinfo=UTC).astimezone(
        timezone(timedelta(minutes=minutes))),
    # hypothesis takes naive bounds; the zone is set above
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),  # noqa: DTZ001
    st.integers(min_value=-23 * 60, max_value=23 * 60))


def _decimals(precision: int, scale: int) -> st.SearchStrategy[Decimal]:
    """Decimals the schema takes: at most `precision` digits, an exponent of at least
    -`scale` (trailing zeros, negative zero and zero with any exponent included)."""
    return st.builds(
        lambda sign, digits, exp: Decimal((sign, tuple(digits), exp)),
        st.integers(0, 1),
        st.lists(st.integers(0, 9), min_size=1, max_size=precision),
        st.integers(min_value=-scale, max_value=6))


def _values(node: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of the Python types the pipeline writes, for one schema node."""
    if isinstance(node, str) and node in named:
        return _values(named[node], named)
    if isinstance(node, dict) and node.get("logicalType") == "timestamp-micros":
        return _AWARE
    if isinstance(node, dict) and node.get("logicalType") == "decimal":
        return _decimals(node["precision"], node.get("scale", 0))
    if isinstance(node, dict) and node.get("type") == "record":
        return st.fixed_dictionaries({f["name"]: _values(f["type"], named)
                                      for f in node["fields"]})
    if isinstance(node, dict) and node.get("type") == "array":
        items = _values(node["items"], named)
        return st.one_of(st.lists(items, max_size=3), st.lists(items, max_size=2).map(tuple))
    if isinstance(node, dict):
        return _values(node["type"], named)
    if isinstance(node, list):
        other = next(t for t in node if t != "null")
        return st.one_of(st.none(), _values(other, named))
    return {"string": st.text(), "double": st.floats(), "long": _LONGS, "int": _INTS,
            "boolean": st.booleans(), "bytes": st.binary(max_size=40)}[node]


def _named(parsed: Any) -> dict[str, Any]:
    return dict(parsed.get("__named_schemas") or {})


def _schemas() -> list[Any]:
    registry = default_registry()
    return [v.parsed for name in registry.names() for v in registry.all_versions(name)]


@settings(max_examples=600, deadline=None)
@given(st.data())
def test_the_direct_writer_writes_fastavros_bytes_for_every_kept_schema(data: Any) -> None:
    parsed = data.draw(st.sampled_from(_schemas()))
    record = data.draw(_values(parsed, _named(parsed)), label=parsed["name"])
    body = direct_write(parsed).body(record)  # type: ignore[union-attr]
    assert body is not None, "a value of the pipeline's own types went to fastavro"
    assert body == _body(parsed, record)


def test_the_direct_writer_covers_every_kept_schema() -> None:
    for parsed in _schemas():
        assert direct_write(parsed) is not None, parsed["name"]


def test_the_pipelines_own_records_are_written_directly(catalog: Catalog) -> None:
    samples = {"market.candles.v1": factories.candle(),
               "market.indicators.v1": factories.indicator_snapshot(),
               "account.state.v1": factories.account_state(),
               "snapshots.bundles.v1": factories.snapshot_bundle(),
               "gate.inbox.v1": {"account": "paper-1", "idea": factories.trade_idea(),
                                 "bundle": factories.snapshot_bundle(), "command": None}}
    for logical, record in samples.items():
        codec = catalog.codec(logical)
        body = direct_write(codec.schema.parsed).body(record)  # type: ignore[union-attr]
        assert body is not None, logical
        assert body == _body(codec.schema.parsed, record), logical


def test_schemas_the_direct_writer_does_not_know_are_left_to_fastavro() -> None:
    def record(field_type: Any) -> Any:
        return fastavro.parse_schema({"type": "record", "name": "T",
                                      "fields": [{"name": "f", "type": field_type}]})
    for field_type in ({"type": "map", "values": "string"}, ["string", "long"],
                       ["null", "string", "long"], {"type": "enum", "name": "E", "symbols": ["A"]},
                       {"type": "fixed", "name": "F", "size": 2}, "float",
                       {"type": "long", "logicalType": "timestamp-millis"},
                       {"type": "string", "logicalType": "uuid"}):
        assert direct_write(record(field_type)) is None, field_type
    linked = fastavro.parse_schema({"type": "record", "name": "Node", "fields": [
        {"name": "next", "type": ["null", "Node"]}]})
    assert direct_write(linked) is None  # a recursive type


@pytest.mark.parametrize("value", [
    Decimal("1.005"),            # finer than the scale (2)
    Decimal("123456789.00"),     # 11 digits, precision 10
    Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"),
    Decimal("0E-3"),
    1.5, "1.50", 2,
])
def test_decimals_the_direct_writer_leaves_to_fastavro_come_out_as_fastavros(
        catalog: Catalog, value: object) -> None:
    codec = catalog.codec("gate.inbox.v1")
    record = {"account": "paper-1", "idea": factories.trade_idea(lot_size=value),
              "bundle": factories.snapshot_bundle(), "command": None}
    assert direct_write(codec.schema.parsed).body(record) is None  # type: ignore[union-attr]
    _assert_fastavros_outcome(codec, record)


@pytest.mark.parametrize("change", ["nested_not_a_dict", "array_not_a_list",
                                    "nested_field_missing", "item_of_wrong_type"])
def test_nested_values_the_direct_writer_leaves_to_fastavro(catalog: Catalog,
                                                            change: str) -> None:
    codec = catalog.codec("account.state.v1")
    record = factories.account_state()
    position = dict(record["positions"][0])
    if change == "nested_not_a_dict":
        record["positions"] = [list(position.items())]
    elif change == "array_not_a_list":
        record["positions"] = {0: position}
    elif change == "nested_field_missing":
        del position["magic"]  # a defaulted field: fastavro fills it in
        record["positions"] = [position]
    else:
        record["positions"] = [{**position, "take_profit": [1]}]
    assert direct_write(codec.schema.parsed).body(record) is None  # type: ignore[union-attr]
    _assert_fastavros_outcome(codec, record)


def _encode_outcome(codec: AvroCodec, record: dict[str, Any]) -> object:
    try:
        return codec.encode(record)
    except InvalidRecord:
        return InvalidRecord


def _assert_fastavros_outcome(codec: AvroCodec, record: dict[str, Any]) -> None:
    """The codec writes fastavro's bytes, or refuses the record: fastavro refuses it, or
    the topic's rules do (they may refuse what fastavro writes)."""
    try:
        reference: object = MAGIC + codec.schema.fingerprint + _body(codec.schema.parsed, record)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
        reference = InvalidRecord
    assert _encode_outcome(codec, record) in (reference, InvalidRecord)


@pytest.mark.parametrize(("field", "value"), [
    ("close", 101),                                   # an int where a double goes
    ("close", True),
    ("rsi_14", 55),
    ("open_time", datetime(2026, 1, 5)),  # noqa: DTZ001 - naive, the case tested
    ("open_time", 1_767_571_200_000_000),             # already micros
    ("input_offset", 2**63),                          # beyond a long
    ("input_partition", 2**31),                       # beyond an int
    ("input_offset", False),
    ("symbol", b"S001"),
    ("symbol", "\ud800"),                            # a lone surrogate: not UTF-8
    ("close", "101.1"),
])
def test_values_the_direct_writer_leaves_to_fastavro_come_out_as_fastavros(
        catalog: Catalog, field: str, value: object) -> None:
    codec = catalog.codec("market.indicators.v1")
    flat = direct_write(codec.schema.parsed)
    assert flat is not None
    assert flat.body(factories.indicator_snapshot()) is not None
    record = {**factories.indicator_snapshot(), field: value}
    assert flat.body(record) is None
    _assert_fastavros_outcome(codec, record)


def test_a_missing_field_goes_to_fastavro(catalog: Catalog) -> None:
    codec = catalog.codec("market.candles.v1")
    record = factories.candle()
    assert direct_write(codec.schema.parsed).body(record) is not None  # type: ignore[union-attr]
    del record["spread"]
    assert direct_write(codec.schema.parsed).body(record) is None  # type: ignore[union-attr]


def test_a_naive_timestamp_is_refused_by_name_not_with_a_type_error(catalog: Catalog) -> None:
    codec = catalog.codec("market.candles.v1")
    naive = datetime(2026, 1, 5)  # noqa: DTZ001 - the case tested
    with pytest.raises(InvalidRecord, match="open_time has no timezone"):
        codec.encode({**factories.candle(), "open_time": naive})


# ---------------------------------------------------------------- a body written once

def _inbox(bundle: dict[str, Any], idea: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"account": "paper-1", "idea": idea or factories.trade_idea(), "bundle": bundle,
            "command": None}


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_reused_bundle_body_gives_the_bytes_of_encoding_the_bundle(data: Any) -> None:
    inbox = default_registry().latest("ai_trader.gate.GateInboxMessage").parsed
    message = data.draw(_values(inbox, _named(inbox)), label="message")
    bundle_type = default_registry().latest("ai_trader.audit.SnapshotBundle").parsed
    bundle = message["bundle"] if message["bundle"] is not None else data.draw(
        _values(bundle_type, _named(bundle_type)), label="bundle")
    writer = direct_write(bundle_type)
    assert writer is not None
    assert writer.shape is not None
    body = writer.body(bundle)
    assert body is not None
    reused = direct_write(inbox).body(message, {"bundle": Encoded(writer.shape, body, bundle)})  # type: ignore[union-attr]
    assert reused == _body(inbox, message)


def test_encode_reusable_gives_the_topics_record_and_its_body(catalog: Catalog) -> None:
    bundles, inbox = catalog.codec("snapshots.bundles.v1"), catalog.codec("gate.inbox.v1")
    bundle = factories.snapshot_bundle()
    value, encoded = bundles.encode_reusable(bundle)
    assert value == bundles.encode(bundle)
    assert MAGIC + bundles.schema.fingerprint + encoded.body == value
    assert encoded.record is bundle
    message = _inbox(bundle)
    assert inbox.encode(message, {"bundle": encoded}) == inbox.encode(message)
    with pytest.raises(InvalidRecord, match="captured_at"):  # the topic's rules still hold
        bundles.encode_reusable({**bundle, "captured_at": datetime(2026, 1, 5)})  # noqa: DTZ001


def test_the_body_is_taken_for_the_very_record_it_was_written_from(catalog: Catalog) -> None:
    bundles, inbox = catalog.codec("snapshots.bundles.v1"), catalog.codec("gate.inbox.v1")
    bundle = factories.snapshot_bundle()
    _, encoded = bundles.encode_reusable(bundle)
    marked = Encoded(encoded.shape, b"MARK", bundle)  # shows which bytes were written
    assert b"MARK" in inbox.encode(_inbox(bundle), {"bundle": marked})
    # an equal copy, another record: encoded as usual
    assert b"MARK" not in inbox.encode(_inbox(dict(bundle)), {"bundle": marked})
    other = factories.snapshot_bundle(symbol="EURUSD")
    assert inbox.encode(_inbox(other), {"bundle": marked}) == inbox.encode(_inbox(other))


def test_a_body_of_another_shape_or_for_a_plain_field_is_not_taken(catalog: Catalog) -> None:
    inbox = catalog.codec("gate.inbox.v1")
    bundle = factories.snapshot_bundle()
    message = _inbox(bundle)
    plain = inbox.encode(message)
    _, candle = catalog.codec("market.candles.v1").encode_reusable(factories.candle())
    for reuse in ({"bundle": Encoded(candle.shape, b"MARK", bundle)},  # a candle's shape
                  {"bundle": Encoded(None, b"MARK", bundle)},
                  {"account": Encoded(candle.shape, b"MARK", message["account"])},  # type: ignore[arg-type]
                  {}):
        assert inbox.encode(message, reuse) == plain, reuse


def test_a_record_left_to_fastavro_ignores_the_reused_body(catalog: Catalog) -> None:
    bundles, inbox = catalog.codec("snapshots.bundles.v1"), catalog.codec("gate.inbox.v1")
    bundle = factories.snapshot_bundle()
    _, encoded = bundles.encode_reusable(bundle)
    message = _inbox(bundle, factories.trade_idea(lot_size=Decimal("1.005")))
    assert direct_write(inbox.schema.parsed).body(message) is None  # type: ignore[union-attr]
    with pytest.raises(InvalidRecord):  # finer than the schema's scale: fastavro refuses it
        inbox.encode(message, {"bundle": Encoded(encoded.shape, b"MARK", bundle)})
    idea = factories.trade_idea()
    del idea["expected_hold"]  # a field with a default: fastavro fills it in
    message = _inbox(bundle, idea)
    assert direct_write(inbox.schema.parsed).body(message) is None  # type: ignore[union-attr]
    assert (inbox.encode(message, {"bundle": Encoded(encoded.shape, b"MARK", bundle)})
            == MAGIC + inbox.schema.fingerprint + _body(inbox.schema.parsed, message))
