"""The item a check asks Steam about: which one, priced in which currency."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Item:
    """What a check asks Steam about: which item, priced in which currency."""

    appid: int
    market_hash_name: str
    currency: int


@dataclass(frozen=True)
class ListingFilter:
    """What a listings watch wants, asked of Steam's new market so it filters server-side.

    ``max_price`` is what the buyer pays, in the item's currency's minor units; the wear bounds
    are inclusive. The answer is checked again locally: the filter only saves paging.
    """

    max_price: int | None = None
    float_min: Decimal | None = None
    float_max: Decimal | None = None
