"""What a Steam market check returns: frozen values with money in integer minor units.

Results travel in dramatiq messages and are stored as JSON: pydantic models, discriminated by
``kind``, dumped with ``model_dump(mode="json")`` (a ``Decimal`` as a string). Counts and prices
are strict integers: ``True`` is not a price.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

ResultKind = Literal["price_overview", "listings", "order_book"]


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PriceOverview(_Value):
    """Lowest and median price and 24-hour volume of one item in one currency."""

    kind: Literal["price_overview"] = "price_overview"
    currency: StrictInt
    lowest_price: StrictInt | None = None
    median_price: StrictInt | None = None
    volume: StrictInt | None = None

    @property
    def has_data(self) -> bool:
        """False for Steam's bare `{"success":true}`: the item exists but has no market data."""
        return any(v is not None for v in (self.lowest_price, self.median_price, self.volume))


class Listing(_Value):
    """One sell listing; `price` goes to the seller, `fee` to Steam and the publisher."""

    listing_id: StrictStr
    price: StrictInt
    fee: StrictInt
    currency: StrictInt
    asset_id: StrictStr | None = None
    float_value: Decimal | None = None
    paint_seed: StrictInt | None = None

    @property
    def total(self) -> int:
        """What the buyer pays, in minor units."""
        return self.price + self.fee


class Listings(_Value):
    """One page of sell listings in Steam's order, and how many the item has in all."""

    kind: Literal["listings"] = "listings"
    total_count: StrictInt
    listings: tuple[Listing, ...]


Level = tuple[StrictInt, StrictInt]
"""One price level of an order book: (price in minor units, how many orders at that price)."""

MAX_LEVELS = 200
"""Levels kept per side: a depth question is about the near book, and snapshots stay small."""


class OrderBook(_Value):
    """Best buy order and best sell offer of one item, how many of each are open, and the depth.

    ``sells`` go up in price from the lowest, ``buys`` down from the highest, each level with its
    own quantity (not cumulative). Steam may send only the near part of a long book, so the
    levels can hold fewer orders than the counts say.
    """

    kind: Literal["order_book"] = "order_book"
    currency: StrictInt
    highest_buy: StrictInt | None
    lowest_sell: StrictInt | None
    buy_count: StrictInt
    sell_count: StrictInt
    sells: tuple[Level, ...] = ()
    buys: tuple[Level, ...] = ()

    def sell_depth(self, at_most: int) -> int:
        """Sell orders at ``at_most`` or under, as far as the levels show."""
        return sum(quantity for price, quantity in self.sells if price <= at_most)

    def buy_depth(self, at_least: int) -> int:
        """Buy orders at ``at_least`` or over, as far as the levels show."""
        return sum(quantity for price, quantity in self.buys if price >= at_least)


Result = Annotated[PriceOverview | Listings | OrderBook, Field(discriminator="kind")]
