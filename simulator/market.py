"""The simulated market: per-item prices that walk over time and listings that appear and sell.

Each item's fair price is a mean-reverting random walk, a pure function of (seed, item,
tick). Its book of listings is simulated tick by tick from a per-item random stream,
lazily, when somebody asks; so the same queries at the same clock times give the same
answers. Everything is in integer minor units; US cents internally.
"""

from __future__ import annotations

import bisect
import math
import random
import struct
from collections import deque
from dataclasses import dataclass

from simulator.catalogue import WEARS, Catalogue, Item
from simulator.clock import Clock
from simulator.money import USD, Fees, convert, fees_for, price_from_total

LISTING_ID_BASE = 433_799_027_041_528_860  # the sample's listing, as a starting point
ASSET_ID_BASE = 30_000_000_000
_SELLER_CURRENCIES = (1, 3, 5, 23, 2, 7, 6, 18, 17, 20, 21, 9, 4, 37, 47, 8)
_SELLER_WEIGHTS = (30, 20, 10, 10, 5, 5, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1)
_REVERSION = 0.002  # per tick, pulls the walk back towards the base price
_VOLATILITY = 0.004  # per tick, in log-price
_MAX_CATCHUP_TICKS = 1_440  # beyond this gap a book is rebuilt instead of replayed
_MAX_VISIBLE_SALES = 8  # per tick, from the cheapest listings; the rest come off the tail


@dataclass(frozen=True, slots=True)
class Listing:
    """One sell listing; `price` is what the seller receives, in the seller's `currency`."""

    listingid: int
    assetid: int
    price: int
    currency: int
    usd_total: int  # what a buyer paid in US cents when it was listed: the book's order
    pattern_seed: int | None
    wear: str | None  # the float as Steam prints it


@dataclass(frozen=True, slots=True)
class Quote:
    """A listing as one viewer sees it: converted to their currency, fees recomputed."""

    listing: Listing
    fees: Fees  # in the seller's currency
    currency: int
    converted_price: int
    converted_fees: Fees

    @property
    def total(self) -> int:
        """What this viewer pays."""
        return self.converted_price + self.converted_fees.total


@dataclass(frozen=True, slots=True)
class Overview:
    """priceoverview's numbers in one currency; None where Steam omits the field."""

    lowest: int | None
    median: int | None
    volume: int


class _Walk:
    """The log-price offset of one item, advanced tick by tick from its own random stream."""

    def __init__(self, seed: str) -> None:
        self._seed = seed
        self._restart()

    def _restart(self) -> None:
        self._rng = random.Random(self._seed)
        self._tick = 0
        self._x = 0.0

    def at(self, tick: int) -> float:
        if tick < self._tick:
            self._restart()  # the clock went back: replay, so the walk stays a pure function
        while self._tick < tick:
            self._x = self._x * (1 - _REVERSION) + _VOLATILITY * self._rng.gauss(0.0, 1.0)
            self._tick += 1
        return self._x


class _Book:
    """One item's sell listings, lowest buyer price first, plus a count of unlisted extras."""

    def __init__(self, item: Item, seed: int, tick: int) -> None:
        self.item = item
        self.rng = random.Random(f"{seed}:{item.item_nameid}:book")
        self.target = 0
        if item.daily_volume:
            target = item.daily_volume * self.rng.uniform(0.3, 1.2)
            self.target = max(3, min(int(target), 20_000))
        self.listings: list[Listing] = []
        self.keys: list[int] = []
        self.tail = 0  # listings beyond `book_cap`, dearer than every materialized one
        self.sales: deque[tuple[int, int]] = deque()  # (tick, usd_total)
        self.tick = tick

    def insert(self, listing: Listing, cap: int) -> None:
        at = bisect.bisect_right(self.keys, listing.usd_total)
        self.keys.insert(at, listing.usd_total)
        self.listings.insert(at, listing)
        if len(self.listings) > cap:
            self.keys.pop()
            self.listings.pop()
            self.tail += 1

    def sell_lowest(self, tick: int) -> None:
        if self.listings:
            self.keys.pop(0)
            self.sales.append((tick, self.listings.pop(0).usd_total))
        elif self.tail:
            self.tail -= 1


class Market:
    """All items' prices and books, driven by one clock; ask it in any supported currency."""

    def __init__(
        self,
        catalogue: Catalogue,
        *,
        seed: int,
        clock: Clock,
        tick_seconds: float = 60.0,
        book_cap: int = 300,
    ) -> None:
        self.catalogue = catalogue
        self._seed = seed
        self._clock = clock
        self._tick_seconds = tick_seconds
        self._book_cap = book_cap
        self._epoch = clock()
        self._walks: dict[int, _Walk] = {}
        self._books: dict[int, _Book] = {}
        self._quoted: dict[tuple[int, int], tuple[_Book, int, tuple[Quote, ...]]] = {}
        self._serial = 0
        self._ticks_per_day = max(1, round(86_400 / tick_seconds))

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def tick_seconds(self) -> float:
        return self._tick_seconds

    def tick(self) -> int:
        """Whole ticks since the market opened; prices and books change only between ticks."""
        return max(0, math.floor((self._clock() - self._epoch) / self._tick_seconds))

    def fair_price(self, item: Item, tick: int | None = None) -> int:
        """The going buyer price in US cents at `tick` (now by default)."""
        walk = self._walks.get(item.index)
        if walk is None:
            walk = self._walks[item.index] = _Walk(f"{self._seed}:{item.item_nameid}:walk")
        offset = walk.at(self.tick() if tick is None else tick)
        return max(3, round(item.base_price * math.exp(offset)))

    def quotes(self, item: Item, currency: int) -> tuple[int, tuple[Quote, ...]]:
        """(total_count, every materialized listing quoted in `currency`, cheapest first)."""
        book = self._book(item)
        key = (item.index, currency)
        cached = self._quoted.get(key)
        # A book changes only when a tick passes (or it is rebuilt): quote it once per tick.
        if cached is None or cached[0] is not book or cached[1] != book.tick:
            quoted = sorted(
                (self._quote(listing, currency) for listing in book.listings),
                key=lambda q: (q.total, q.listing.listingid),
            )
            cached = self._quoted[key] = (book, book.tick, tuple(quoted))
        return len(book.listings) + book.tail, cached[2]

    def summary(self, item: Item, currency: int) -> tuple[int, int | None]:
        """(listing count, lowest buyer price) without simulating a book nobody opened yet.

        Search pages list dozens of items at once; opening every book would take seconds.
        """
        if item.index in self._books:
            total, quoted = self.quotes(item, currency)
            return total, (quoted[0].total if quoted else None)
        target = _Book(item, self._seed, self.tick()).target
        lowest = convert(round(self.fair_price(item) * 1.005), USD, currency) if target else None
        return target, lowest

    def overview(self, item: Item, currency: int) -> Overview:
        """Lowest listing, median sale over the last day and the day's volume."""
        book = self._book(item)
        _, quoted = self.quotes(item, currency)
        lowest = quoted[0].total if quoted else None
        volume = self._volume(item)
        if not volume:
            return Overview(lowest=lowest, median=None, volume=0)
        recent = sorted(total for _, total in book.sales)
        median_usd = recent[len(recent) // 2] if len(recent) >= 3 else self.fair_price(item)
        return Overview(lowest=lowest, median=convert(median_usd, USD, currency), volume=volume)

    def _volume(self, item: Item) -> int:
        """Sales in the last 24 hours: the item's typical volume with hourly noise."""
        if not item.daily_volume:
            return 0
        hour = self.tick() * self._tick_seconds // 3600
        noise = random.Random(f"{self._seed}:{item.item_nameid}:volume:{hour}").gauss(0.0, 0.25)
        return max(1, round(item.daily_volume * math.exp(noise)))

    def _book(self, item: Item) -> _Book:
        now = self.tick()
        book = self._books.get(item.index)
        if book is None or now - book.tick > _MAX_CATCHUP_TICKS or now < book.tick:
            book = self._books[item.index] = _Book(item, self._seed, now)
            for _ in range(min(book.target, self._book_cap)):
                book.insert(self._new_listing(book, now, self._ask(book, now)), self._book_cap)
            book.tail += max(0, book.target - len(book.listings))
        while book.tick < now:
            book.tick += 1
            self._step(book, book.tick)
        return book

    def _step(self, book: _Book, tick: int) -> None:
        """One tick of trading: buyers take the cheapest listings, sellers list new ones."""
        fair = self.fair_price(book.item, tick)
        rate = book.item.daily_volume / self._ticks_per_day
        while book.keys and book.keys[0] < fair * 0.97:  # under-priced listings go at once
            book.sell_lowest(tick)
        sold = _poisson(book.rng, rate)
        # A busy item sells most units from listings out of view; replaying each of them
        # would cost seconds per simulated day and change nothing a client can see.
        in_view = sold if not book.tail else min(sold, _MAX_VISIBLE_SALES)
        book.tail = max(0, book.tail - (sold - in_view))
        for _ in range(in_view):
            book.sell_lowest(tick)
        while book.sales and book.sales[0][0] <= tick - self._ticks_per_day:
            book.sales.popleft()
        size = len(book.listings) + book.tail
        refill = rate * book.target / max(size, 1) if book.target else 0.0
        for _ in range(min(_poisson(book.rng, refill), 500)):
            usd_total = self._ask(book, tick)
            if len(book.listings) >= self._book_cap and usd_total >= book.keys[-1]:
                book.tail += 1  # out of view anyway: count it, skip building it
            else:
                book.insert(self._new_listing(book, tick, usd_total), self._book_cap)
        while book.tail and len(book.listings) < self._book_cap // 2:
            book.tail -= 1  # the unlisted extras are dearer: bring one into view
            usd_total = self._ask(book, tick, markup_floor=0.08)
            book.insert(self._new_listing(book, tick, usd_total), self._book_cap)

    def _ask(self, book: _Book, tick: int, *, markup_floor: float = 0.0) -> int:
        """A new seller's asking price (buyer total, US cents): a little above the fair price."""
        markup = markup_floor + 0.002 + abs(book.rng.gauss(0.0, 0.05))
        return max(3, round(self.fair_price(book.item, tick) * (1 + markup)))

    def _new_listing(self, book: _Book, tick: int, usd_total: int) -> Listing:
        rng = book.rng
        currency = rng.choices(_SELLER_CURRENCIES, _SELLER_WEIGHTS)[0]
        price = price_from_total(convert(usd_total, USD, currency), currency)
        seed: int | None = None
        wear: str | None = None
        if book.item.has_float:
            low, high = WEARS.get(book.item.wear or "", (0.06, 0.80))
            seed = rng.randint(0, 1000)
            wear = _float32_text(rng.uniform(low, high))
        self._serial += 1
        return Listing(
            listingid=LISTING_ID_BASE + self._serial * 7_919 + rng.randint(0, 7_000),
            assetid=ASSET_ID_BASE + self._serial * 13 + rng.randint(0, 12),
            price=price,
            currency=currency,
            usd_total=usd_total,
            pattern_seed=seed,
            wear=wear,
        )

    @staticmethod
    def _quote(listing: Listing, currency: int) -> Quote:
        converted = convert(listing.price, listing.currency, currency)
        return Quote(
            listing=listing,
            fees=fees_for(listing.price, listing.currency),
            currency=currency,
            converted_price=converted,
            converted_fees=fees_for(converted, currency),
        )


def _poisson(rng: random.Random, rate: float) -> int:
    """A Poisson draw: Knuth's method for small rates, a normal approximation above 30."""
    if rate <= 0:
        return 0
    if rate > 30:
        return max(0, round(rng.gauss(rate, math.sqrt(rate))))
    limit, count, product = math.exp(-rate), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _float32_text(value: float) -> str:
    """A wear value the way Steam sends it: a float32, printed as its shortest double."""
    return repr(struct.unpack("<f", struct.pack("<f", value))[0])
