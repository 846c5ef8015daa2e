"""The catalogue: real item names from three games, each with a stable item_nameid."""

from __future__ import annotations

import pytest

from simulator.catalogue import Catalogue, CatalogueError, Item, load_catalogue


def _find(catalogue: Catalogue, appid: int, name: str) -> Item:
    item = catalogue.find(appid, name)
    assert item is not None, name
    return item


def test_catalogue_holds_hundreds_of_items_across_the_three_games() -> None:
    catalogue = load_catalogue()
    per_app = {appid: sum(1 for it in catalogue if it.appid == appid) for appid in (730, 570, 440)}
    assert len(catalogue) >= 300
    assert all(count >= 20 for count in per_app.values()), per_app


@pytest.mark.parametrize(
    ("appid", "name"),
    [
        (730, "AK-47 | Redline (Field-Tested)"),
        (730, "M4A1-S | Atomic Alloy (Minimal Wear)"),
        (730, "Dreams & Nightmares Case"),
        (730, "★ Sport Gloves | Pandora's Box (Field-Tested)"),
        (570, "Manifold Paradox"),
        (440, "Mann Co. Supply Crate Key"),
    ],
    ids=["skin", "sample-skin", "case-with-ampersand", "gloves-with-star", "dota", "tf2-key"],
)
def test_real_names_are_found(appid: int, name: str) -> None:
    assert load_catalogue().find(appid, name) is not None


def test_item_nameids_are_unique_and_stable_between_loads() -> None:
    first, second = load_catalogue(), load_catalogue()
    ids = [item.item_nameid for item in first]
    assert len(set(ids)) == len(ids)
    assert ids == [item.item_nameid for item in second]
    assert all(first.by_nameid(item.item_nameid) == item for item in first)


def test_wear_is_read_from_cs2_names_only() -> None:
    catalogue = load_catalogue()
    assert _find(catalogue, 730, "AK-47 | Redline (Field-Tested)").wear == "Field-Tested"
    assert _find(catalogue, 730, "Chroma Case").has_float is False
    assert _find(catalogue, 730, "★ Karambit").has_float is True
    assert _find(catalogue, 440, "Mann Co. Supply Crate Key").wear is None


@pytest.mark.parametrize(
    "line",
    ["730\t100\tAK", "999\t100\t5\tNope", "730\tcheap\t5\tAK", "730\t1\t5\tToo cheap"],
    ids=["missing-field", "unknown-app", "price-not-number", "price-below-minimum"],
)
def test_a_bad_line_is_rejected_with_its_number(line: str) -> None:
    with pytest.raises(CatalogueError) as caught:
        load_catalogue("# header\n" + line + "\n")
    assert caught.value.line_number == 2
