"""Does Steam know an item? ``tasks add`` asks before it writes, when Steam can be asked.

It asks the way the fetcher does: one ``priceoverview`` through the proxy pool (so the
budgets shared in Redis hold), with Steam's answer confirmed through a second proxy when there
is one. An unknown item is looked up with Steam's market search for close names to suggest.
Steam that cannot be asked (no Redis for the pool, no proxy free, a timeout) is not a verdict:
the caller adds the watch and says it is unverified.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import redis.asyncio

from shared.config import Settings
from shared.observability import SecretURL
from shared.steam import (
    Item,
    ItemNotFound,
    ProxyPool,
    ProxyPoolExhausted,
    SteamClient,
    SteamError,
    create_http_session,
)

Verdict = Literal["known", "unknown", "unverified"]
TIMEOUT = 8.0  # seconds for one request: a command waits, a person reads the terminal
_WORD = re.compile(r"[^\W_]{3,}")


@dataclass(frozen=True)
class Verification:
    verdict: Verdict
    why: str = ""  # unverified: why Steam could not be asked
    close: list[str] = field(default_factory=list)  # unknown: names Steam has that are close


async def verify_item(
    item: Item,
    *,
    settings: Settings,
    redis_url: str,
    base_url: str,
    proxies: Sequence[SecretURL],
) -> Verification:
    """Ask Steam (or the simulator at ``base_url``) whether ``item`` exists."""
    client = redis.asyncio.Redis.from_url(redis_url, socket_timeout=TIMEOUT)
    http = create_http_session(timeout=min(settings.http_timeout, TIMEOUT))
    try:
        pool = ProxyPool.from_urls(
            client,
            list(proxies),
            budgets=settings.budgets,
            cooldowns=settings.cooldowns,
            slack=settings.budget_slack,
        )
        steam = SteamClient(
            http=http,
            pool=pool,
            base_url=base_url,
            family=settings.steam_family,
            language=settings.steam_language,
            country=settings.steam_country,
            retry_within=TIMEOUT,
        )
        try:
            await steam.price_overview(item)
        except ItemNotFound:
            return Verification("unknown", close=await _close_names(steam, item))
        except ProxyPoolExhausted as e:
            return Verification("unverified", why=f"no proxy free until {e.retry_at:%H:%M:%S}")
        except SteamError as e:
            return Verification("unverified", why=str(e))
        except (OSError, redis.RedisError, TimeoutError) as e:
            return Verification("unverified", why=f"{type(e).__name__}: {e}"[:200])
        return Verification("known")
    finally:
        await http.close()
        await client.aclose()


async def _close_names(steam: SteamClient, item: Item) -> list[str]:
    """Up to three names Steam's search finds close to ``item``'s (none if search fails)."""
    words = sorted(set(_WORD.findall(item.market_hash_name)), key=len, reverse=True)
    candidates: list[str] = []
    for word in words[:2]:  # the most distinctive words; search shares a small budget
        try:
            candidates += await steam.search(item.appid, word)
        except (SteamError, OSError, TimeoutError):
            break
    folded = {name.casefold(): name for name in candidates}
    close = difflib.get_close_matches(
        item.market_hash_name.casefold(), list(folded), n=3, cutoff=0.6
    )
    return [folded[name] for name in close]
