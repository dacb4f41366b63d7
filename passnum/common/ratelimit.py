"""A small rate limiter on Django's cache: a fixed window per (scope, key).

The key (an IP address, a code…) is never stored in clear: the cache key is an HMAC of it under SECRET_KEY, so a
dump of the cache (database table, Redis) reveals neither who checked nor what. A fixed window is coarse (up to
twice the limit across a window boundary) but needs one counter per key and no clean-up: entries expire with the
window.

Counting uses `cache.add` + `cache.incr`, atomic on LocMem, Redis and Memcached. The database cache is not
atomic under concurrency: a few extra hits may slip through, never fewer. With several web processes use a
shared cache (database or Redis), or each process counts on its own.
"""

import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.utils.crypto import salted_hmac

_SALT = "passnum.common.ratelimit"


@dataclass(frozen=True)
class RateLimit:
    allowed: bool
    retry_after: int  # seconds until the window resets; 0 when allowed
    remaining: int  # hits left in the current window after this one


def _cache_key(scope: str, key: str, window_start: int) -> str:
    digest = salted_hmac(_SALT, f"{scope}\x00{key}", algorithm="sha256").hexdigest()[:32]
    return f"rl:{scope}:{digest}:{window_start}"


def hit(scope: str, key: str, *, limit: int, window: int, cache_alias: str = "default", now=None) -> RateLimit:
    """Count one hit for `key` in `scope` and say whether it is within `limit` hits per `window` seconds.

    The hit that exceeds the limit is refused, and so is every later one until the window ends."""
    if limit < 1 or window < 1:
        raise ValueError("limit and window must be at least 1")
    now = time.time() if now is None else now
    window_start = int(now // window) * window
    cache = caches[cache_alias]
    cache_key = _cache_key(scope, key, window_start)
    timeout = window + 1  # outlives the window a little, never shorter than it
    cache.add(cache_key, 0, timeout=timeout)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # expired or evicted between add and incr
        cache.set(cache_key, 1, timeout=timeout)
        count = 1
    if count <= limit:
        return RateLimit(allowed=True, retry_after=0, remaining=limit - count)
    return RateLimit(allowed=False, retry_after=max(1, math.ceil(window_start + window - now)), remaining=0)


def blocked(checks: list[tuple[str, str, int, int]], *, cache_alias: str = "default", now=None) -> int:
    """Without counting a hit: seconds until every (scope, key, limit, window) is back within its limit, or 0.
    One cache round trip for all of them."""
    now = time.time() if now is None else now
    keys = {}
    for scope, key, limit, window in checks:
        window_start = int(now // window) * window
        keys[_cache_key(scope, key, window_start)] = (limit, window_start + window)
    found = caches[cache_alias].get_many(list(keys))
    waits = [math.ceil(end - now) for k, (limit, end) in keys.items() if (found.get(k) or 0) >= limit]
    return max(1, max(waits)) if waits else 0


def reset(scope: str, key: str, *, window: int, cache_alias: str = "default", now=None) -> None:
    """Forget the current window's hits for `key` (tests, support)."""
    now = time.time() if now is None else now
    caches[cache_alias].delete(_cache_key(scope, key, int(now // window) * window))


def client_ip(request) -> str:
    """The client's address. Behind N reverse proxies that append to X-Forwarded-For (nginx's
    `$proxy_add_x_forwarded_for`), set PASSNUM_TRUSTED_PROXY_COUNT = N: the address is then the N-th entry from the
    right, the one the outermost trusted proxy saw. Entries further left are sent by the client and never trusted.
    With 0 (the default) the TCP peer address is used."""
    count = int(getattr(settings, "PASSNUM_TRUSTED_PROXY_COUNT", 0) or 0)
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    if count <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < count:
        return remote
    return forwarded[-count]
