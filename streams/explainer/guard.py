"""The number guard: every number the model writes must be one it was given.

The facts sent to the model are text (JSON). The same tokenizer reads the facts and
the model's answer; an answer passes only if each of its numeric tokens matches a
token of the facts. What counts:

- **Numbers** `2385.2`, `1,950.5` (comma thousands separators), `.5`, `45%`
  (the number 45), `12k` (12 000). A number written with *d* decimals matches a
  fact that rounds to it at *d* decimals: `2.4` matches `2.41` and `2.35`, `2385`
  matches `2385.2`, `2.40` does not match `2.41`. Magnitudes are compared (`-120`
  and `120` are the same number: "a loss of 120" is how people write `-120.00`);
  the guard checks numbers, not the words around them.
- **Times** `14:30` / `14:30:05` are times, not numbers: they must equal (to the
  minute) a time in the facts. **Dates** `2026-03-02` must equal a date in the facts.
  Their digits are never read as numbers, on either side.
- **Identifiers** that glue letters and digits (`M15`, `US30`, `rsi_14`, `v1`) pass
  when the same word is in the facts, or else when their digits match a fact number.
- **Number words** (`two` ... `ninety`, `hundred`, `thousand`, compounds like
  `twenty-five`) are numbers too. `zero`, `one` and ordinals are not checked:
  they are mostly prose ("one of the checks", "the first target").

Anything else (a number the facts do not contain, even one the model computed
correctly from them) fails the guard; the caller then discards the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_TIME = re.compile(r"(?<![\d:])([01]?\d|2[0-3]):([0-5]\d)(?::[0-5]\d)?(?![\d:])")
# a word that glues letters and digits: M15, US30, rsi_14, v1, 2nd (leading digits too)
_WORD = re.compile(r"[A-Za-z_]+[A-Za-z_0-9]*\d[A-Za-z_0-9]*")
_NUMBER = re.compile(
    r"(?<![\w.])(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?P<k>[kK](?![A-Za-z]))?"
)
_DIGITS = re.compile(r"\d+(?:\.\d+)?")

_UNITS = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}
_SCALES = {"hundred": 100, "thousand": 1000}
_SPELLED = re.compile(
    r"(?i)\b(?:(?P<tens>" + "|".join(_TENS) + r")(?:[\s-](?P<unit>one|"
    + "|".join(_UNITS) + r"))?|(?P<single>" + "|".join(_UNITS) + r"))"
    r"(?:\s+(?P<scale>hundred|thousand))?\b"
)
_LONE_SCALE = re.compile(r"(?i)\b(?:a\s+)?(?P<scale>hundred|thousand)\b")


@dataclass(frozen=True, slots=True)
class Token:
    """One numeric token of a text: what was written and the number it stands for."""

    text: str
    value: Decimal
    tolerance: Decimal


@dataclass(frozen=True, slots=True)
class FactIndex:
    """The numbers, times, dates and digit-bearing words found in the facts."""

    numbers: tuple[Decimal, ...]
    times: frozenset[str]
    dates: frozenset[str]
    words: frozenset[str]

    def has_number(self, token: Token) -> bool:
        """True when some fact rounds to the token at the token's precision."""
        return any(abs(fact - token.value) <= token.tolerance for fact in self.numbers)


@dataclass(frozen=True, slots=True)
class GuardResult:
    """The verdict on a text: ok, or the tokens the facts do not support."""

    ok: bool
    unsupported: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Scan:
    numbers: tuple[Token, ...]
    times: tuple[str, ...]
    dates: tuple[str, ...]
    words: tuple[tuple[str, Token | None], ...]


def _blank(text: str, match: re.Match[str]) -> str:
    start, end = match.span()
    return text[:start] + " " * (end - start) + text[end:]


def _token(written: str, number: str, scale: int = 1) -> Token:
    plain = number.replace(",", "")
    decimals = len(plain.split(".", 1)[1]) if "." in plain else 0
    value = abs(Decimal(plain)) * scale
    tolerance = Decimal(5).scaleb(-(decimals + 1)) * scale
    return Token(written, value, tolerance)


def _spelled(match: re.Match[str]) -> Token:
    value = 0
    if match.group("tens"):
        value = _TENS[match.group("tens").lower()]
        unit = match.group("unit")
        if unit:
            value += 1 if unit.lower() == "one" else _UNITS[unit.lower()]
    else:
        value = _UNITS[match.group("single").lower()]
    if match.group("scale"):
        value *= _SCALES[match.group("scale").lower()]
    return Token(match.group(0), Decimal(value), Decimal("0.5"))


def _scan(text: str) -> _Scan:
    """Tokenize `text`: dates and times first (blanked), then words, then numbers."""
    dates: list[str] = []
    times: list[str] = []
    for match in list(_DATE.finditer(text)):
        dates.append(match.group(0))
        text = _blank(text, match)
    for match in list(_TIME.finditer(text)):
        times.append(f"{int(match.group(1)):02d}:{match.group(2)}")
        text = _blank(text, match)
    words: list[tuple[str, Token | None]] = []
    for match in list(_WORD.finditer(text)):
        digits = _DIGITS.findall(match.group(0))
        words.append((match.group(0).lower(), _token(match.group(0), digits[-1])
                      if len(digits) == 1 else None))
        text = _blank(text, match)
    numbers: list[Token] = []
    for match in list(_NUMBER.finditer(text)):
        scale = 1000 if match.group("k") else 1
        numbers.append(_token(match.group(0), match.group("num"), scale))
        text = _blank(text, match)
    for match in list(_SPELLED.finditer(text)):
        numbers.append(_spelled(match))
        text = _blank(text, match)
    for match in list(_LONE_SCALE.finditer(text)):
        numbers.append(Token(match.group(0), Decimal(_SCALES[match.group("scale").lower()]),
                             Decimal("0.5")))
    return _Scan(tuple(numbers), tuple(times), tuple(dates), tuple(words))


def index_facts(facts_text: str) -> FactIndex:
    """Everything numeric the facts contain (numbers inside identifiers count too)."""
    scan = _scan(facts_text)
    numbers = {t.value for t in scan.numbers}
    for word in scan.words:
        numbers.update(_token(d, d).value for d in _DIGITS.findall(word[0]))
    return FactIndex(
        numbers=tuple(sorted(numbers)),
        times=frozenset(scan.times),
        dates=frozenset(scan.dates),
        words=frozenset(w for w, _ in scan.words),
    )


def check_numbers(text: str, facts: FactIndex) -> GuardResult:
    """Does every number, time, date and numbered word of `text` appear in the facts?"""
    scan = _scan(text)
    bad: list[str] = [t.text for t in scan.numbers if not facts.has_number(t)]
    bad += [t for t in scan.times if t not in facts.times]
    bad += [d for d in scan.dates if d not in facts.dates]
    for word, token in scan.words:
        if word in facts.words:
            continue
        if token is None or not facts.has_number(token):
            bad.append(word)
    return GuardResult(not bad, tuple(bad))
