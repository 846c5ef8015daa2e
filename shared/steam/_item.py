"""The item a check asks Steam about: which one, priced in which currency."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    """What a check asks Steam about: which item, priced in which currency."""

    appid: int
    market_hash_name: str
    currency: int
