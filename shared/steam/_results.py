"""What a Steam market check returns: frozen values with money in integer minor units.

Results travel in dramatiq messages, so each converts to and from a JSON-safe dict
(`Decimal` as a string) tagged with its `kind`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Literal

ResultKind = Literal["price_overview", "listings", "order_book"]


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data[key]
    if type(value) is not int:  # bool is an int subclass and is not a number here
        raise TypeError(f"{key} must be an int, got {value!r}")
    return value


def _opt_int(data: Mapping[str, Any], key: str) -> int | None:
    return None if data.get(key) is None else _int(data, key)


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{key} must be a string, got {value!r}")
    return value


def _check_kind(data: Mapping[str, Any], kind: str) -> None:
    if data.get("kind", kind) != kind:
        raise ValueError(f"expected kind {kind!r}, got {data.get('kind')!r}")


@dataclass(frozen=True)
class PriceOverview:
    """Lowest and median price and 24-hour volume of one item in one currency."""

    KIND: ClassVar[Literal["price_overview"]] = "price_overview"

    currency: int
    lowest_price: int | None
    median_price: int | None
    volume: int | None

    @property
    def has_data(self) -> bool:
        """False for Steam's bare `{"success":true}`: the item exists but has no market data."""
        return any(v is not None for v in (self.lowest_price, self.median_price, self.volume))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.KIND,
            "currency": self.currency,
            "lowest_price": self.lowest_price,
            "median_price": self.median_price,
            "volume": self.volume,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PriceOverview:
        _check_kind(data, cls.KIND)
        return cls(
            currency=_int(data, "currency"),
            lowest_price=_opt_int(data, "lowest_price"),
            median_price=_opt_int(data, "median_price"),
            volume=_opt_int(data, "volume"),
        )


@dataclass(frozen=True)
class Listing:
    """One sell listing; `price` goes to the seller, `fee` to Steam and the publisher."""

    listing_id: str
    price: int
    fee: int
    currency: int
    asset_id: str | None = None
    float_value: Decimal | None = None
    paint_seed: int | None = None

    @property
    def total(self) -> int:
        """What the buyer pays, in minor units."""
        return self.price + self.fee

    def to_dict(self) -> dict[str, Any]:
        return {
            "listing_id": self.listing_id,
            "price": self.price,
            "fee": self.fee,
            "currency": self.currency,
            "asset_id": self.asset_id,
            "float_value": None if self.float_value is None else str(self.float_value),
            "paint_seed": self.paint_seed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Listing:
        listing_id = data["listing_id"]
        if not isinstance(listing_id, str):
            raise TypeError(f"listing_id must be a string, got {listing_id!r}")
        float_text = _opt_str(data, "float_value")
        return cls(
            listing_id=listing_id,
            price=_int(data, "price"),
            fee=_int(data, "fee"),
            currency=_int(data, "currency"),
            asset_id=_opt_str(data, "asset_id"),
            float_value=None if float_text is None else Decimal(float_text),
            paint_seed=_opt_int(data, "paint_seed"),
        )


@dataclass(frozen=True)
class Listings:
    """One page of sell listings in Steam's order, and how many the item has in all."""

    KIND: ClassVar[Literal["listings"]] = "listings"

    total_count: int
    listings: tuple[Listing, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.KIND,
            "total_count": self.total_count,
            "listings": [listing.to_dict() for listing in self.listings],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Listings:
        _check_kind(data, cls.KIND)
        return cls(
            total_count=_int(data, "total_count"),
            listings=tuple(Listing.from_dict(item) for item in data["listings"]),
        )


@dataclass(frozen=True)
class OrderBook:
    """Best buy order and best sell offer of one item, and how many of each are open."""

    KIND: ClassVar[Literal["order_book"]] = "order_book"

    currency: int
    highest_buy: int | None
    lowest_sell: int | None
    buy_count: int
    sell_count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.KIND,
            "currency": self.currency,
            "highest_buy": self.highest_buy,
            "lowest_sell": self.lowest_sell,
            "buy_count": self.buy_count,
            "sell_count": self.sell_count,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OrderBook:
        _check_kind(data, cls.KIND)
        return cls(
            currency=_int(data, "currency"),
            highest_buy=_opt_int(data, "highest_buy"),
            lowest_sell=_opt_int(data, "lowest_sell"),
            buy_count=_int(data, "buy_count"),
            sell_count=_int(data, "sell_count"),
        )


Result = PriceOverview | Listings | OrderBook

_BY_KIND: dict[str, type[PriceOverview] | type[Listings] | type[OrderBook]] = {
    PriceOverview.KIND: PriceOverview,
    Listings.KIND: Listings,
    OrderBook.KIND: OrderBook,
}


def result_from_dict(data: Mapping[str, Any]) -> Result:
    """Rebuild whichever result `data` holds, from the `kind` its `to_dict()` wrote."""
    kind = data.get("kind")
    if kind not in _BY_KIND:
        raise ValueError(f"unknown result kind {kind!r}")
    return _BY_KIND[kind].from_dict(data)
