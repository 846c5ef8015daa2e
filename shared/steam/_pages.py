"""What steamwatch reads from Steam's HTML pages: only the item's numeric id, for the order book.

The legacy order histogram takes ``item_nameid``, which Steam prints only on the item's listing
page (``Market_LoadOrderSpread( 176118270 );``). It never changes, so it is scraped once.
"""

from __future__ import annotations

import re

from shared.steam._errors import BadResponse, ItemNotFound

_NAMEID = re.compile(rb"Market_LoadOrderSpread\(\s*(\d{1,20})\s*\)")
_NO_LISTINGS = b"There are no listings for this item"


def parse_item_nameid(
    body: bytes | str, *, currency: int, appid: int, market_hash_name: str
) -> int:
    """The ``item_nameid`` on an item's listing page; a page without it is not that page."""
    raw = body.encode() if isinstance(body, str) else body
    match = _NAMEID.search(raw)
    if match:
        return int(match.group(1))
    if _NO_LISTINGS in raw:
        raise ItemNotFound(endpoint="listings", appid=appid, market_hash_name=market_hash_name)
    # Steam serves its new market page here once the classic one is switched off: the family
    # fallback treats that like any other HTML answer.
    raise BadResponse.from_body(
        raw, endpoint="listings", reason="no item_nameid on the listing page", is_html=True
    )
