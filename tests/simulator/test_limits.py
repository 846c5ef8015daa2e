"""The limiter on its own: sliding windows per client and group, escalating bans."""

from __future__ import annotations

from simulator.config import LimitsConfig, WindowLimit
from simulator.limits import Limiter


def _limiter(strikes: int = 3, ladder: tuple[float, ...] = (100.0, 1000.0)) -> Limiter:
    return Limiter(
        LimitsConfig(
            windows={"priceoverview": WindowLimit(2, 60.0), "listings": WindowLimit(1, 60.0)},
            strikes=strikes,
            strike_window_s=60.0,
            ban_ladder_s=ladder,
        )
    )


def test_a_window_admits_its_limit_then_refuses_until_it_slides() -> None:
    limiter = _limiter()
    assert [limiter.check("a", "priceoverview", t) for t in (0, 1, 2)] == ["ok", "ok", "limited"]
    assert limiter.check("a", "priceoverview", 60.5) == "ok"


def test_clients_and_groups_are_counted_separately() -> None:
    limiter = _limiter()
    limiter.check("a", "listings", 0)
    assert limiter.check("a", "listings", 1) == "limited"
    assert limiter.check("b", "listings", 1) == "ok"
    assert limiter.check("a", "priceoverview", 1) == "ok"


def test_strikes_earn_bans_that_grow_and_cover_every_group() -> None:
    limiter = _limiter()
    limiter.check("a", "listings", 0)
    verdicts = [limiter.check("a", "listings", t) for t in (1, 2, 3)]
    assert verdicts == ["limited", "limited", "banned"]
    assert limiter.check("a", "priceoverview", 50) == "banned"
    assert limiter.describe("a", 50).banned_until == 103
    assert limiter.check("a", "listings", 104) == "ok"
    for t in (105, 106, 107):
        limiter.check("a", "listings", t)
    assert limiter.describe("a", 108).banned_until == 1107
    assert limiter.check("a", "listings", 1106) == "banned"


def test_disabled_limits_admit_everything() -> None:
    limiter = Limiter(LimitsConfig(enabled=False))
    assert {limiter.check("a", "histogram", float(t)) for t in range(100)} == {"ok"}


def test_scaled_limits_shrink_every_duration() -> None:
    scaled = LimitsConfig().scaled(0.01)
    assert scaled.windows["priceoverview"] == WindowLimit(20, 0.6)
    assert scaled.ban_ladder_s[0] == 3.0


def test_a_distinct_window_counts_items_and_lets_repeats_through() -> None:
    limiter = Limiter(LimitsConfig(windows={"histogram": WindowLimit(2, 3600.0, distinct=True)}))
    verdicts = [limiter.check("a", "histogram", float(t), key) for t, key in enumerate("aabab")]
    assert verdicts == ["ok"] * 5
    assert limiter.check("a", "histogram", 10.0, "c") == "limited"
    assert limiter.check("a", "histogram", 3601.0, "c") == "ok"
