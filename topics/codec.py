"""Avro single-object encoding over the schemas kept in `schemas/`.

Wire format (Avro spec, "Single object encoding"): the two marker bytes
``C3 01``, the 8-byte little-endian CRC-64-AVRO fingerprint of the writer
schema's Parsing Canonical Form, then the schemaless Avro body.

Every released version of every schema stays in `schemas/` as
``<namespace>.<Name>.v<N>.avsc``. A record type may reference another by its
full name; the registry expands such references with *every* kept version of
the referenced type, so bytes written by any earlier combination of versions
still find their writer schema by fingerprint and are resolved to the current
reader schema (`schemaless_reader(writer, reader)`).
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form
from fastavro.validation import validate

from topics.settings import REPO_ROOT

MAGIC = b"\xc3\x01"
HEADER_SIZE = len(MAGIC) + 8
_FILE_RE = re.compile(r"^(?P<name>[A-Za-z_][\w.]*)\.v(?P<version>\d+)\.avsc$")
_BUILTIN = {
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
    "record", "enum", "array", "map", "fixed",
}

Validator = Callable[[dict[str, Any]], None]


class CodecError(Exception):
    """Base of everything that makes a record undeliverable; the DLQ records its class name."""


class CorruptRecord(CodecError):
    """The bytes are not a single-object encoded Avro record of a known schema."""


class UnknownFingerprint(CodecError):
    """The header names a writer schema this registry has never seen."""


class InvalidRecord(CodecError):
    """The record decodes (or would encode) but breaks its schema or its topic's rules."""


@dataclass(frozen=True)
class SchemaVersion:
    """One concrete writer schema: a kept file version with its references expanded."""

    name: str
    version: int
    parsed: Any = field(repr=False)
    canonical: str = field(repr=False)
    fingerprint: bytes


def _schema_dir() -> Path:
    return Path(os.environ.get("AI_TRADER_SCHEMA_DIR", REPO_ROOT / "schemas"))


def _references(node: Any, out: set[str]) -> None:
    """Collect full names used as a type reference anywhere inside a schema node."""
    if isinstance(node, str):
        if node not in _BUILTIN:
            out.add(node)
    elif isinstance(node, list):
        for item in node:
            _references(item, out)
    elif isinstance(node, dict):
        for key in ("type", "items", "values"):
            if key in node:
                _references(node[key], out)
        for f in node.get("fields", ()):
            _references(f["type"], out)


def _expand(node: Any, chosen: Mapping[str, dict[str, Any]], defined: set[str]) -> Any:
    """Inline a referenced named type at its first use (Avro's definition-before-use rule)."""
    if isinstance(node, str):
        if node in chosen and node not in defined:
            defined.add(node)
            return _expand(chosen[node], chosen, defined)
        return node
    if isinstance(node, list):
        return [_expand(item, chosen, defined) for item in node]
    if isinstance(node, dict):
        out = dict(node)
        if out.get("type") == "record":
            defined.add(f"{out.get('namespace', '')}.{out['name']}".lstrip("."))
        for key in ("type", "items", "values"):
            if key in out and not (key == "type" and out[key] == "record"):
                out[key] = _expand(out[key], chosen, defined)
        if "fields" in out:
            out["fields"] = [
                {**f, "type": _expand(f["type"], chosen, defined)} for f in out["fields"]
            ]
        return out
    return node


class SchemaRegistry:
    """Every kept schema version, addressable by name (latest) or by fingerprint (any)."""

    def __init__(self, schema_dir: Path | None = None) -> None:
        self._raw: dict[str, dict[int, dict[str, Any]]] = {}
        directory = schema_dir or _schema_dir()
        for path in sorted(directory.glob("*.avsc")):
            match = _FILE_RE.match(path.name)
            if not match:
                raise ValueError(f"schema file name must be <full.Name>.v<N>.avsc: {path.name}")
            raw = json.loads(path.read_text(encoding="utf-8"))
            name, version = match["name"], int(match["version"])
            full = f"{raw.get('namespace', '')}.{raw['name']}".lstrip(".")
            if full != name:
                raise ValueError(f"{path.name} declares {full}, its file name says {name}")
            self._raw.setdefault(name, {})[version] = raw
        if not self._raw:
            raise ValueError(f"no schemas found in {directory}")
        self._latest: dict[str, SchemaVersion] = {}
        self._by_fingerprint: dict[bytes, SchemaVersion] = {}
        for name in self._raw:
            for sv in self._versions_of(name):
                self._by_fingerprint.setdefault(sv.fingerprint, sv)
            self._latest[name] = self._build(name, self._latest_choice(name))

    def _deps(self, name: str, version: int) -> set[str]:
        """Names referenced by a schema version, transitively over every kept version."""
        seen: set[str] = set()
        todo = [(name, version)]
        while todo:
            n, v = todo.pop()
            refs: set[str] = set()
            _references(self._raw[n][v], refs)
            for ref in refs - seen - {name}:
                if ref not in self._raw:
                    raise ValueError(f"{n} v{v} references unknown type {ref}")
                seen.add(ref)
                todo.extend((ref, rv) for rv in self._raw[ref])
        return seen

    def _latest_choice(self, name: str) -> dict[str, int]:
        latest = max(self._raw[name])
        choice = {dep: max(self._raw[dep]) for dep in self._deps(name, latest)}
        return {name: latest, **choice}

    def _build(self, name: str, choice: Mapping[str, int]) -> SchemaVersion:
        chosen = {n: self._raw[n][v] for n, v in choice.items() if n != name}
        expanded = _expand(self._raw[name][choice[name]], chosen, set())
        parsed = parse_schema(expanded)
        canonical = to_parsing_canonical_form(parsed)
        return SchemaVersion(
            name=name,
            version=choice[name],
            parsed=parsed,
            canonical=canonical,
            fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
        )

    def _versions_of(self, name: str) -> Iterator[SchemaVersion]:
        """Every combination of kept versions of the type and of the types it references."""
        for version in sorted(self._raw[name]):
            deps = sorted(self._deps(name, version))
            for combo in itertools.product(*(sorted(self._raw[d]) for d in deps)):
                yield self._build(name, {name: version, **dict(zip(deps, combo, strict=True))})

    def names(self) -> list[str]:
        """Full names of every record type kept."""
        return sorted(self._raw)

    def latest(self, name: str) -> SchemaVersion:
        """The current (reader and writer) schema of a record type."""
        try:
            return self._latest[name]
        except KeyError:
            raise KeyError(f"unknown schema {name}") from None

    def writer_for(self, fp: bytes) -> SchemaVersion:
        """The writer schema with this fingerprint, or `UnknownFingerprint`."""
        try:
            return self._by_fingerprint[fp]
        except KeyError:
            raise UnknownFingerprint(f"unknown schema fingerprint {fp.hex()}") from None

    def all_versions(self, name: str) -> list[SchemaVersion]:
        """Every concrete writer schema of a type, oldest first."""
        return list(self._versions_of(name))


#: Microseconds per unit of the timestamp logical types read by `_PlainRead`.
_TIMESTAMP_UNITS = {"timestamp-micros": 1, "timestamp-millis": 1000}
#: fastavro's epoch: `_PlainRead` converts exactly as fastavro's logical readers do.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class _PlainRead:
    """A record schema read without fastavro's logical types, converted afterwards.

    fastavro dispatches every logical value through a generic per-value lookup (a
    candle's read: 3.5 us with it, 3.0 us without it plus our conversion, on these
    machines). For a record whose only logical types are top-level timestamps, the codec
    reads the schema with those annotations removed and builds the datetimes itself, with
    the expression fastavro uses (`epoch + timedelta(microseconds=...)`), so the result
    is the same object graph (tests compare both paths on every kept schema).
    """

    parsed: Any
    timestamps: tuple[tuple[str, int], ...]   # (field, microseconds per unit)

    def convert(self, record: dict[str, Any]) -> None:
        for name, unit in self.timestamps:
            value = record[name]
            if value is not None:
                record[name] = _EPOCH + timedelta(0, 0, value * unit)  # = microseconds=


def _without_fastavro_keys(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_fastavro_keys(v) for k, v in node.items() if not k.startswith("__")}
    if isinstance(node, list):
        return [_without_fastavro_keys(v) for v in node]
    return node


def _timestamp_unit(node: Any) -> tuple[Any, int] | None:
    """(the type without its logical annotation, unit) for `long` timestamps, or None."""
    if (isinstance(node, dict) and node.get("type") == "long"
            and node.get("logicalType") in _TIMESTAMP_UNITS
            and set(node) <= {"type", "logicalType"}):
        return "long", _TIMESTAMP_UNITS[node["logicalType"]]
    if isinstance(node, list) and len(node) == 2 and "null" in node:
        other = node[1] if node[0] == "null" else node[0]
        found = _timestamp_unit(other)
        if found is not None:
            return [found[0] if t is other else t for t in node], found[1]
    return None


def _has_logical(node: Any) -> bool:
    if isinstance(node, dict):
        return "logicalType" in node or any(_has_logical(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_logical(v) for v in node)
    return False


def plain_read(parsed: Any) -> _PlainRead | None:
    """The fast read plan of a parsed record schema, or None where it does not apply."""
    schema = _without_fastavro_keys(parsed)
    if not isinstance(schema, dict) or schema.get("type") != "record":
        return None
    fields, stamps = [], []
    for f in schema["fields"]:
        found = _timestamp_unit(f["type"])
        if found is None:
            fields.append(f)
        else:
            fields.append({**f, "type": found[0]})
            stamps.append((f["name"], found[1]))
    plain = {**schema, "fields": fields}
    if not stamps or _has_logical(plain):
        return None
    return _PlainRead(parse_schema(plain), tuple(stamps))


@dataclass(frozen=True, slots=True)
class Encoded:
    """A record with the Avro body a codec wrote for it (`AvroCodec.encode_reusable`).

    Given to `AvroCodec.encode(record, reuse={field: encoded})` where `record[field]` is
    this very record (the same object), the body is written as it is instead of the
    record being encoded a second time: an idea's snapshot bundle goes to its own topic
    and, inside the idea's gate-inbox message, to the gate. Taken only where the field's
    type has the `shape` the body was written with; anywhere else the field is encoded
    as usual, so the bytes are always those of encoding the record. A record must not
    change once encoded (a bundle is the frozen input of a decision).
    """

    shape: str | None
    body: bytes
    record: Mapping[str, Any]


class _Unsupported(Exception):  # noqa: N818 - control flow inside `_DirectWrite`, never seen
    """A value the direct writer does not write itself: fastavro writes the record."""


_PACK_DOUBLE = struct.Struct("<d").pack
_PACK_BRANCH_DOUBLE = struct.Struct("<Bd").pack  # a union's branch index (< 64), a double
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1
_SMALL_VARINTS = tuple(bytes([n]) for n in range(0x80))


def _varint(n: int) -> bytes:
    """Avro's variable-length encoding of a non-negative (zig-zagged) integer."""
    if n < 0x80:
        return _SMALL_VARINTS[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _w_timestamp_micros(v: Any) -> bytes:
    # fastavro's `prepare_timestamp_micros` for an aware datetime, the same arithmetic
    if type(v) is not datetime or v.tzinfo is None:
        raise _Unsupported
    delta = v - _EPOCH
    micros = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    if not _LONG_MIN <= micros <= _LONG_MAX:
        raise _Unsupported
    return _varint((micros << 1) ^ (micros >> 63))


def _w_decimal(precision: int, scale: int) -> Callable[[Any], bytes]:
    """`bytes` with the decimal logical type: fastavro's `prepare_bytes_decimal`, the
    same steps (a value it would refuse is left to it, and it refuses it)."""

    def write_decimal(v: Any) -> bytes:
        if type(v) is not Decimal:
            raise _Unsupported
        sign, digits, exp = v.as_tuple()
        if type(exp) is not int or len(digits) > precision or exp + scale < 0:
            raise _Unsupported  # NaN or infinity, too many digits, too fine a scale
        unscaled = 0
        for digit in digits:
            unscaled = unscaled * 10 + digit
        unscaled *= 10 ** (exp + scale)
        size = (unscaled.bit_length() + 8) // 8
        data = (-unscaled if sign else unscaled).to_bytes(size, "big", signed=True)
        return _varint(size << 1) + data
    return write_decimal


class _Source:
    """The code of one generated writer: its lines, and the objects they refer to."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {
            "U": _Unsupported, "VI": _varint, "PD": _PACK_DOUBLE, "PBD": _PACK_BRANCH_DOUBLE,
            "TS": _w_timestamp_micros,
            "LMIN": _LONG_MIN, "LMAX": _LONG_MAX, "IMIN": _INT_MIN, "IMAX": _INT_MAX,
        }
        self._count = itertools.count()

    def fresh(self, stem: str) -> str:
        return f"{stem}{next(self._count)}"

    def refer(self, value: Any) -> str:
        """A name the generated code reaches `value` by."""
        name = self.fresh("k")
        self.names[name] = value
        return name

    def add(self, indent: int, *lines: str) -> None:
        self.lines.extend("    " * indent + line for line in lines)


def _primitive(src: _Source, kind: str, v: str, i: int) -> bool:
    """Lines writing the primitive `kind` held in variable `v`; False if not one."""
    if kind == "string":
        b = src.fresh("b")
        src.add(i, f"if type({v}) is not str: raise U", f"{b} = {v}.encode()",
                f"a(VI(len({b}) << 1)); a({b})")
    elif kind == "long":
        src.add(i, f"if type({v}) is not int or not LMIN <= {v} <= LMAX: raise U",
                f"a(VI(({v} << 1) ^ ({v} >> 63)))")
    elif kind == "int":
        src.add(i, f"if type({v}) is not int or not IMIN <= {v} <= IMAX: raise U",
                f"a(VI(({v} << 1) ^ ({v} >> 63)))")
    elif kind == "double":
        src.add(i, f"if type({v}) is not float: raise U", f"a(PD({v}))")
    elif kind == "boolean":
        src.add(i, f"if type({v}) is not bool: raise U", f"a(b'\\x01' if {v} else b'\\x00')")
    elif kind == "bytes":
        src.add(i, f"if type({v}) is not bytes: raise U", f"a(VI(len({v}) << 1)); a({v})")
    else:
        return False
    return True


_RECORD_KEYS = {"type", "name", "namespace", "doc", "fields", "aliases"}


def _record_code(src: _Source, node: dict[str, Any], v: str, i: int,
                 named: Mapping[str, Any], open_names: frozenset[str],
                 reusing: bool = False) -> bool:
    """Lines writing the record held in dict `v`, field by field (a missing one has its
    default, which fastavro fills in: left to it, by the KeyError). `reusing`: the
    record's record-typed fields take an `Encoded` body from `E` (the top level only)."""
    if node.get("type") != "record" or not set(node) <= _RECORD_KEYS:
        return False
    inside = open_names | {node.get("name", "")}
    for f in node["fields"]:
        item = src.fresh("v")
        src.add(i, f"{item} = {v}[{f['name']!r}]")
        reused = reusing and _reuse_code(src, f, item, i, named)
        if reused:
            src.add(i, "else:")
        if not _node_code(src, f["type"], item, i + reused, named, inside):
            return False
    return True


def _reuse_code(src: _Source, f: dict[str, Any], v: str, i: int,
                named: Mapping[str, Any]) -> bool:
    """`if` lines writing an `Encoded` body given for field `f` (held in `v`) as it is:
    when it was written from this very value with a type of the field's shape. False
    (no lines) when the field's type is not a record or `["null", record]`."""
    node, branch = f["type"], b""
    if isinstance(node, list) and len(node) == 2 and "null" in node:
        branch = bytes([2 if node[0] == "null" else 0])  # the record's branch index
        node = node[1] if node[0] == "null" else node[0]
    if isinstance(node, str):
        node = named.get(node)
    if not isinstance(node, dict) or node.get("type") != "record":
        return False
    shape = _shape(node, named)
    if shape is None:
        return False
    x = src.fresh("x")
    src.add(i, f"{x} = E.get({f['name']!r}) if E else None",
            f"if {x} is not None and {x}.record is {v} and {x}.shape == {src.refer(shape)}:",
            f"    a({branch!r}); a({x}.body)" if branch else f"    a({x}.body)")
    return True


def _standalone(node: Any, named: Mapping[str, Any], defined: set[str]) -> Any:
    """`node` as a schema of its own: each named type it uses defined where first used."""
    if isinstance(node, str):
        if node in named and node not in defined:
            return _standalone(named[node], named, defined)
        return node
    if isinstance(node, list):
        return [_standalone(n, named, defined) for n in node]
    if not isinstance(node, dict):
        return node
    if node.get("type") in ("record", "enum", "fixed") and "name" in node:
        defined.add(node["name"])
    return {k: (_standalone(w, named, defined) if k in ("type", "items", "values", "fields")
                else w) for k, w in node.items()}


def _shape(node: dict[str, Any], named: Mapping[str, Any]) -> str | None:
    """The Parsing Canonical Form of a record type: what its binary encoding depends on
    (two types of one form write the same value to the same bytes). None if it does
    not parse on its own."""
    try:
        return str(to_parsing_canonical_form(parse_schema(_standalone(node, named, set()))))
    except Exception:  # noqa: BLE001 - fastavro raises several types for a schema it refuses
        return None


def _node_code(src: _Source, node: Any, v: str, i: int, named: Mapping[str, Any],
               open_names: frozenset[str]) -> bool:
    """Lines writing the value of schema `node` held in variable `v` at indent `i`;
    False where the direct writer does not apply (fastavro then writes the record)."""
    if isinstance(node, str):
        if _primitive(src, node, v, i):
            return True
        if node in named and node not in open_names:  # a recursive type is left to fastavro
            return _node_code(src, named[node], v, i, named, open_names)
        return False
    if isinstance(node, list):
        return _union_code(src, node, v, i, named, open_names)
    return isinstance(node, dict) and _dict_code(src, node, v, i, named, open_names)


def _union_code(src: _Source, node: list[Any], v: str, i: int, named: Mapping[str, Any],
                open_names: frozenset[str]) -> bool:
    """`["null", T]` or `[T, "null"]`: the branch index, then the value."""
    if len(node) != 2 or "null" not in node:
        return False
    other = node[1] if node[0] == "null" else node[0]
    if other == "null":
        return False
    null, value = (0, 2) if node[0] == "null" else (2, 0)
    src.add(i, f"if {v} is None: a({bytes([null])!r})", "else:")
    if other == "double":  # the branch index and the value in one pack
        src.add(i + 1, f"if type({v}) is not float: raise U", f"a(PBD({value}, {v}))")
        return True
    src.add(i + 1, f"a({bytes([value])!r})")
    return _node_code(src, other, v, i + 1, named, open_names)


def _dict_code(src: _Source, node: dict[str, Any], v: str, i: int, named: Mapping[str, Any],
               open_names: frozenset[str]) -> bool:
    keys, kind, logical = set(node), node.get("type"), node.get("logicalType")
    if keys == {"type"}:
        return _node_code(src, kind, v, i, named, open_names)
    if kind == "long" and logical == "timestamp-micros" and keys == {"type", "logicalType"}:
        src.add(i, f"a(TS({v}))")
        return True
    if (kind == "bytes" and logical == "decimal"
            and keys <= {"type", "logicalType", "precision", "scale"}
            and type(node.get("precision")) is int and type(node.get("scale", 0)) is int):
        write = src.refer(_w_decimal(node["precision"], node.get("scale", 0)))
        src.add(i, f"a({write}({v}))")
        return True
    if kind == "array" and keys == {"type", "items"}:
        # one block holding every item, then the empty block: fastavro's layout
        item = src.fresh("v")
        src.add(i, f"if type({v}) is not list and type({v}) is not tuple: raise U",
                f"if {v}:")
        src.add(i + 1, f"a(VI(len({v}) << 1))", f"for {item} in {v}:")
        if not _node_code(src, node["items"], item, i + 2, named, open_names):
            return False
        src.add(i, "a(b'\\x00')")
        return True
    if kind == "record":
        src.add(i, f"if type({v}) is not dict: raise U")
        return _record_code(src, node, v, i, named, open_names)
    return False


@dataclass(frozen=True)
class _DirectWrite:
    """The body of a record written here, for the exact Python types the pipeline makes;
    any other value, or a missing field, and fastavro writes the record as before.

    fastavro spends about 1 us per nullable field (its union writer tries each branch
    and validates the value against it: a whole nested record, for a nullable one) and
    converts every logical value through a generic lookup. The writer here is Python
    source generated from the schema, one straight run of type checks and appends per
    record type (a function call per field was most of its cost before): an indicator
    snapshot 20 us with fastavro, 4.7 us with a function per field, 2 us generated; an
    idea's inbox record (the idea and its snapshot bundle) 69 us with fastavro. Covered:
    the primitives the schemas use, `["null", T]` unions, nested records, arrays,
    timestamp-micros and decimal bytes. The bytes are fastavro's (tests compare both on
    generated records of every kept schema).
    """

    write: Callable[[Mapping[str, Any], Mapping[str, Encoded] | None], bytes]
    source: str
    shape: str | None = None

    def body(self, record: Mapping[str, Any],
             reuse: Mapping[str, Encoded] | None = None) -> bytes | None:
        try:
            return self.write(record, reuse)
        except Exception:  # noqa: BLE001 - _Unsupported, KeyError, UnicodeEncodeError ...
            return None


def direct_write(parsed: Any) -> _DirectWrite | None:
    """The direct writer of a parsed record schema, or None where it does not apply."""
    named = {name: _without_fastavro_keys(node)
             for name, node in (parsed.get("__named_schemas") or {}).items()
             } if isinstance(parsed, dict) else {}
    schema = _without_fastavro_keys(parsed)
    if not isinstance(schema, dict):
        return None
    src = _Source()
    src.add(1, "p = []", "a = p.append")
    if not _record_code(src, schema, "r", 1, named, frozenset(), reusing=True):
        return None
    src.add(1, "return b''.join(p)")
    source = "\n".join(["def write(r, E=None):", *src.lines])
    scope = dict(src.names)
    exec(compile(source, f"<avro writer {schema.get('name')}>", "exec"), scope)  # noqa: S102 - our code, from our schemas
    return _DirectWrite(scope["write"], source, _shape(schema, named))


class AvroCodec:
    """Encodes and decodes one record type with single-object framing.

    `validator` holds the topic's own rules (finite prices, known enum words ...);
    it runs on encode and on decode, so hostile records never enter the pipeline
    and never leave a producer.
    """

    def __init__(
        self, registry: SchemaRegistry, name: str, validator: Validator | None = None
    ) -> None:
        self.registry = registry
        self.schema = registry.latest(name)
        self.validator = validator
        self._header = MAGIC + self.schema.fingerprint
        self._plain = plain_read(self.schema.parsed)
        self._direct = direct_write(self.schema.parsed)

    @property
    def name(self) -> str:
        """Full name of the record type."""
        return self.schema.name

    def encode(self, record: Mapping[str, Any],
               reuse: Mapping[str, Encoded] | None = None) -> bytes:
        """Serialise with the current schema; `InvalidRecord` names what is wrong.

        The schema is checked first (by writing), then the topic's rules, which may
        therefore assume a record of the schema's shape. `reuse`: bodies already written
        for some of the record's fields (`Encoded`); the bytes are the same either way.
        """
        body = None if self._direct is None else self._direct.body(record, reuse)
        if body is not None:
            data = self._header + body
        else:
            buf = io.BytesIO()
            buf.write(self._header)
            try:
                fastavro.schemaless_writer(buf, self.schema.parsed, record)
            except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
                self._raise_invalid(record, exc)
            data = buf.getvalue()
        if self.validator is not None:
            self.validator(dict(record))
        return data

    def encode_reusable(self, record: Mapping[str, Any]) -> tuple[bytes, Encoded]:
        """`encode(record)`, and its body for a record that carries this one (`Encoded`)."""
        data = self.encode(record)
        shape = None if self._direct is None else self._direct.shape
        return data, Encoded(shape, data[HEADER_SIZE:], record)

    def _raise_invalid(self, record: Mapping[str, Any], exc: Exception) -> None:
        try:
            validate(record, self.schema.parsed, raise_errors=True)
        except Exception as detail:  # noqa: BLE001 - fastavro raises several types here
            raise InvalidRecord(f"{self.name}: {detail}") from exc
        raise InvalidRecord(f"{self.name}: {type(exc).__name__}: {exc}") from exc

    def decode(self, data: bytes | None) -> dict[str, Any]:
        """Parse bytes of any kept writer version into the current reader shape."""
        if data is None:
            raise CorruptRecord("value is null (tombstone or missing)")
        if data.startswith(self._header):
            writer = self.schema  # written with the current schema: the common case
        else:
            writer = self._writer_of(data)
        buf = io.BytesIO(data)
        buf.seek(HEADER_SIZE)
        plain = self._plain
        try:
            if writer is self.schema and plain is not None:
                record = fastavro.schemaless_reader(buf, plain.parsed, None)
                plain.convert(record)  # type: ignore[arg-type]
            elif writer is self.schema:
                record = fastavro.schemaless_reader(buf, writer.parsed, None)
            else:
                record = fastavro.schemaless_reader(buf, writer.parsed, self.schema.parsed)
        except Exception as exc:  # noqa: BLE001 - truncated/garbled bodies raise many types
            raise CorruptRecord(f"{self.name}: body does not decode: {type(exc).__name__}") from exc
        if buf.tell() != len(data):
            raise CorruptRecord(f"{self.name}: {len(data) - buf.tell()} trailing bytes")
        if not isinstance(record, dict):
            raise CorruptRecord(f"{self.name}: body is not a record")
        if self.validator is not None:
            self.validator(record)
        return record

    def _writer_of(self, data: bytes) -> SchemaVersion:
        if len(data) < HEADER_SIZE or data[:2] != MAGIC:
            raise CorruptRecord("missing Avro single-object marker C3 01")
        writer = self.registry.writer_for(data[2:HEADER_SIZE])
        if writer.name != self.name:
            raise InvalidRecord(f"record is a {writer.name}, this topic carries {self.name}")
        return writer


_default_registry: SchemaRegistry | None = None


def default_registry() -> SchemaRegistry:
    """The registry over the repository's `schemas/` folder, loaded once."""
    global _default_registry
    if _default_registry is None:
        _default_registry = SchemaRegistry()
    return _default_registry
