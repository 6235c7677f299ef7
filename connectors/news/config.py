"""The alias map that tags headlines with symbols and currencies.

An alias written in lower case matches in any case ("gold", "Gold", "GOLD");
an alias with capitals matches exactly, so "Fed" and "Dow" do not tag "fed up"
or "a dowry". Operators extend it with a JSON file (`NEWS_ALIASES_PATH`):
`{"alias": {"symbols": [...], "currencies": [...]}}`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Tags:
    """What an alias stands for."""

    symbols: tuple[str, ...] = ()
    currencies: tuple[str, ...] = ()


def _t(symbols: str = "", currencies: str = "") -> Tags:
    return Tags(tuple(symbols.split()), tuple(currencies.split()))


DEFAULT_ALIASES: dict[str, Tags] = {
    "gold": _t("XAUUSD", "XAU"), "bullion": _t("XAUUSD", "XAU"), "xau": _t("XAUUSD", "XAU"),
    "xau/usd": _t("XAUUSD", "XAU USD"),
    "xauusd": _t("XAUUSD", "XAU USD"), "precious metals": _t("XAUUSD", "XAU"),
    "euro": _t("EURUSD", "EUR"), "eurozone": _t("EURUSD", "EUR"), "euro zone": _t("EURUSD", "EUR"),
    "ECB": _t("EURUSD", "EUR"), "Lagarde": _t("EURUSD", "EUR"), "eur/usd": _t("EURUSD", "EUR USD"),
    "eurusd": _t("EURUSD", "EUR USD"),
    "Dow": _t("US30", "USD"), "dow jones": _t("US30", "USD"), "US30": _t("US30", "USD"),
    "wall street": _t("US30", "USD"),
    "Fed": _t("", "USD"), "FOMC": _t("", "USD"), "Powell": _t("", "USD"),
    "dollar": _t("", "USD"), "greenback": _t("", "USD"), "payrolls": _t("", "USD"),
    "NFP": _t("", "USD"), "Treasury": _t("", "USD"), "Treasuries": _t("", "USD"),
    "sterling": _t("", "GBP"), "BoE": _t("", "GBP"), "yen": _t("", "JPY"), "BoJ": _t("", "JPY"),
}


@dataclass(frozen=True)
class NewsConfig:
    """Feeds to poll and how to tag them."""

    urls: tuple[str, ...] = ()
    aliases: Mapping[str, Tags] = field(default_factory=lambda: dict(DEFAULT_ALIASES))


def load_aliases(path: Path | None) -> dict[str, Tags]:
    """The default aliases, extended (and overridden) by a JSON file."""
    aliases = dict(DEFAULT_ALIASES)
    if path is None:
        return aliases
    for alias, tags in json.loads(path.read_text(encoding="utf-8")).items():
        aliases[alias] = Tags(tuple(tags.get("symbols", ())), tuple(tags.get("currencies", ())))
    return aliases
