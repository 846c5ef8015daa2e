"""The market model on its own: prices walk with the clock, listings appear and sell."""

from __future__ import annotations

from decimal import Decimal

from simulator.catalogue import WEARS, Item, load_catalogue
from simulator.clock import ManualClock
from simulator.market import Market
from simulator.orderbook import build_order_book

CATALOGUE = load_catalogue()


def _item(appid: int, name: str) -> Item:
    item = CATALOGUE.find(appid, name)
    assert item is not None
    return item


def _market(clock: ManualClock, seed: int = 7) -> Market:
    return Market(CATALOGUE, seed=seed, clock=clock)


def test_the_fair_price_moves_when_the_clock_advances() -> None:
    clock = ManualClock()
    market = _market(clock)
    redline = _item(730, "AK-47 | Redline (Field-Tested)")
    before = market.fair_price(redline)
    clock.advance(6 * 3600)
    assert market.fair_price(redline) != before


def test_the_same_seed_and_clock_give_the_same_market() -> None:
    first_clock, second_clock = ManualClock(), ManualClock()
    first, second = _market(first_clock), _market(second_clock)
    redline = _item(730, "AK-47 | Redline (Field-Tested)")
    for step in (0, 600, 3600):
        first_clock.advance(step)
        second_clock.advance(step)
        assert first.overview(redline, 3) == second.overview(redline, 3)
        assert first.quotes(redline, 3) == second.quotes(redline, 3)


def test_a_different_seed_gives_different_prices() -> None:
    redline = _item(730, "AK-47 | Redline (Field-Tested)")
    clock = ManualClock()
    first, second = _market(clock, seed=1), _market(clock, seed=2)
    clock.advance(3 * 3600)
    assert first.fair_price(redline) != second.fair_price(redline)


def test_listings_sell_and_new_ones_appear_with_larger_ids() -> None:
    clock = ManualClock()
    market = _market(clock)
    redline = _item(730, "AK-47 | Redline (Field-Tested)")
    before = {q.listing.listingid for q in market.quotes(redline, 1)[1]}
    clock.advance(3600)
    after = {q.listing.listingid for q in market.quotes(redline, 1)[1]}
    sold, listed = before - after, after - before
    assert sold and listed
    assert min(listed) > max(before)


def test_quotes_are_cheapest_first_and_buyers_pay_price_plus_fee() -> None:
    market = _market(ManualClock())
    total, quotes = market.quotes(_item(730, "Kilowatt Case"), 3)
    assert total >= len(quotes) > 0
    assert [q.total for q in quotes] == sorted(q.total for q in quotes)
    assert all(q.total == q.converted_price + q.converted_fees.total for q in quotes)


def test_cs2_skins_carry_a_float_inside_their_wear_and_a_pattern_seed() -> None:
    market = _market(ManualClock())
    _, quotes = market.quotes(_item(730, "AK-47 | Redline (Field-Tested)"), 1)
    low, high = WEARS["Field-Tested"]
    for quote in quotes:
        assert quote.listing.wear is not None and quote.listing.pattern_seed is not None
        assert Decimal(str(low)) <= Decimal(quote.listing.wear) <= Decimal(str(high))
        assert 0 <= quote.listing.pattern_seed <= 1000


def test_cases_and_tf2_keys_carry_no_float() -> None:
    market = _market(ManualClock())
    for appid, name in ((730, "Chroma Case"), (440, "Mann Co. Supply Crate Key")):
        _, quotes = market.quotes(_item(appid, name), 1)
        assert quotes and all(q.listing.wear is None for q in quotes)


def test_the_highest_buy_order_stays_below_the_lowest_sell() -> None:
    clock = ManualClock()
    market = _market(clock)
    for _ in range(5):
        for name in ("AK-47 | Redline (Field-Tested)", "Kilowatt Case", "Chroma Case"):
            book = build_order_book(market, _item(730, name), 23)
            assert book.highest_buy is not None and book.lowest_sell is not None
            assert book.highest_buy < book.lowest_sell
            assert book.buy_count == sum(level.quantity for level in book.buys)
        clock.advance(1800)


def test_an_item_without_sales_has_no_listings_and_no_volume() -> None:
    market = _market(ManualClock())
    overview = market.overview(_item(730, "Souvenir AWP | Dragon Lore (Factory New)"), 1)
    assert (overview.lowest, overview.median, overview.volume) == (None, None, 0)
