"""The items the simulated market trades: real market_hash_names with stable ids and prices.

The list lives in `catalogue.txt` beside this module (appid, base price in US cents,
typical daily sales, name). `item_nameid` is derived from the name, so it never changes
between runs and clients can cache it the way they cache Steam's.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Literal

AppId = Literal[440, 570, 730]
APP_NAMES: dict[int, str] = {
    730: "Counter-Strike 2",
    570: "Dota 2",
    440: "Team Fortress 2",
}
CONTEXT_ID = "2"
"""All three games keep marketable items in inventory context 2."""

WEARS: dict[str, tuple[float, float]] = {
    "Factory New": (0.0, 0.07),
    "Minimal Wear": (0.07, 0.15),
    "Field-Tested": (0.15, 0.38),
    "Well-Worn": (0.38, 0.45),
    "Battle-Scarred": (0.45, 1.0),
}

_NAMEID_FLOOR = 100_000
_NAMEID_SPAN = 199_900_000  # real item_nameids run from about 1e5 to 2e8


class CatalogueError(ValueError):
    """Raised when the catalogue data file has a line that cannot be read."""

    def __init__(self, line_number: int, line: str, reason: str) -> None:
        super().__init__(f"catalogue.txt line {line_number}: {reason}: {line!r}")
        self.line_number = line_number
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Item:
    """One marketable item: `base_price` is in US cents, `daily_volume` in sales a day."""

    index: int
    appid: int
    market_hash_name: str
    item_nameid: int
    base_price: int
    daily_volume: int

    @property
    def wear(self) -> str | None:
        """The CS2 exterior in the name, e.g. "Field-Tested", or None."""
        if self.appid != 730 or not self.market_hash_name.endswith(")"):
            return None
        tail = self.market_hash_name.rsplit("(", 1)[-1].rstrip(")")
        return tail if tail in WEARS else None

    @property
    def group_id(self) -> str | None:
        """The new market's id for the group of a skin's wears (Steam files every wear of
        "AK-47 | Redline" under one id such as "G1807209A023004"); None for ungrouped items."""
        if self.wear is None:
            return None
        return f"G{zlib.crc32(self.group_name.encode()):010d}A{self.appid:03d}"

    @property
    def group_name(self) -> str:
        """The name without its wear: "AK-47 | Redline"."""
        wear = self.wear
        return self.market_hash_name[: -len(wear) - 3] if wear else self.market_hash_name

    @property
    def has_float(self) -> bool:
        """Whether listings carry a pattern seed and a wear float (CS2 skins, knives, gloves)."""
        return self.wear is not None or self.market_hash_name.startswith("★")


class Catalogue:
    """Lookup of items by (appid, market_hash_name) and by item_nameid."""

    def __init__(self, items: list[Item]) -> None:
        self._items = tuple(items)
        self._by_name = {(item.appid, item.market_hash_name): item for item in items}
        self._by_nameid = {item.item_nameid: item for item in items}
        self._by_group: dict[str, list[Item]] = {}
        for item in items:
            if item.group_id is not None:
                self._by_group.setdefault(item.group_id, []).append(item)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self._items)

    def find(self, appid: int, market_hash_name: str) -> Item | None:
        """The item with this name in this game, or None (Steam's "no such item")."""
        return self._by_name.get((appid, market_hash_name))

    def by_nameid(self, item_nameid: int) -> Item | None:
        return self._by_nameid.get(item_nameid)

    def group(self, appid: int, group_id: str) -> list[Item]:
        """The items filed under a new-market group id (every wear the catalogue has)."""
        return [item for item in self._by_group.get(group_id, []) if item.appid == appid]


def load_catalogue(text: str | None = None) -> Catalogue:
    """Read the catalogue from `text`, or from the packaged `catalogue.txt`."""
    if text is None:
        text = resources.files(__package__).joinpath("catalogue.txt").read_text("utf-8")
    items: list[Item] = []
    taken: set[int] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 4:
            raise CatalogueError(number, line, "expected 4 tab-separated fields")
        appid_text, price_text, volume_text, name = parts
        try:
            appid, price, volume = int(appid_text), int(price_text), int(volume_text)
        except ValueError as exc:
            raise CatalogueError(number, line, "appid, price and volume must be integers") from exc
        if appid not in APP_NAMES or price < 3 or volume < 0 or not name:
            raise CatalogueError(number, line, "unknown appid, price below 3 or bad volume")
        nameid = _nameid(appid, name, taken)
        taken.add(nameid)
        items.append(Item(len(items), appid, name, nameid, price, volume))
    return Catalogue(items)


def _nameid(appid: int, name: str, taken: set[int]) -> int:
    """A stable id from the name's CRC; a collision moves to the next free number."""
    nameid = _NAMEID_FLOOR + zlib.crc32(f"{appid}/{name}".encode()) % _NAMEID_SPAN
    while nameid in taken:
        nameid += 1
    return nameid
