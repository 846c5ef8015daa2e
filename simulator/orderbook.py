"""The order book of one item in one currency: sell levels from its listings, buy orders.

Sell levels aggregate the simulated listings. Buy orders are not traded, only shown:
their shape changes hourly and their prices follow the fair price every tick, always
strictly below the lowest sell, as on Steam.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from simulator.catalogue import Item
from simulator.market import Market
from simulator.money import USD, convert


@dataclass(frozen=True, slots=True)
class Level:
    """One price level: `quantity` orders at `price` (buyer pays, minor units)."""

    price: int
    quantity: int


@dataclass(frozen=True, slots=True)
class OrderBook:
    """Both sides of an item's book in one currency; sells ascending, buys descending."""

    currency: int
    sells: tuple[Level, ...]
    buys: tuple[Level, ...]
    sell_count: int
    buy_count: int

    @property
    def lowest_sell(self) -> int | None:
        return self.sells[0].price if self.sells else None

    @property
    def highest_buy(self) -> int | None:
        return self.buys[0].price if self.buys else None


def build_order_book(market: Market, item: Item, currency: int) -> OrderBook:
    """The current book of `item`, quoted in `currency`."""
    total, quotes = market.quotes(item, currency)
    sells = _aggregate([quote.total for quote in quotes])
    ceiling = sells[0].price if sells else None
    buys = _buy_levels(market, item, currency, ceiling)
    return OrderBook(
        currency=currency,
        sells=sells,
        buys=buys,
        sell_count=total,
        buy_count=sum(level.quantity for level in buys),
    )


def _aggregate(totals: list[int]) -> tuple[Level, ...]:
    """Group ascending buyer totals into levels."""
    levels: list[Level] = []
    for price in totals:
        if levels and levels[-1].price == price:
            levels[-1] = Level(price, levels[-1].quantity + 1)
        else:
            levels.append(Level(price, 1))
    return tuple(levels)


def _buy_levels(
    market: Market, item: Item, currency: int, ceiling: int | None
) -> tuple[Level, ...]:
    hour = int(market.tick() * market.tick_seconds // 3600)
    rng = random.Random(f"{market.seed}:{item.item_nameid}:bids:{hour}")
    fair = market.fair_price(item)
    if item.daily_volume:
        price, count, scale = fair * rng.uniform(0.80, 0.95), rng.randint(3, 25), item.daily_volume
    else:  # nobody trades it: a few hopeful bids far below, like the captured EUR sample
        price, count, scale = fair * rng.uniform(0.01, 0.3), rng.randint(0, 3), 1
    levels: list[Level] = []
    for _ in range(count):
        amount = convert(max(3, round(price)), USD, currency)
        price *= 1 - rng.uniform(0.005, 0.05)
        quantity = rng.randint(1, max(1, scale // 30))
        if ceiling is not None and amount >= ceiling:
            continue  # a bid at or above the lowest ask would have bought it
        if levels and levels[-1].price <= amount:
            levels[-1] = Level(levels[-1].price, levels[-1].quantity + quantity)
        else:
            levels.append(Level(amount, quantity))
    return tuple(levels)
