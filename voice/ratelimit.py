"""A fixed-window rate limit on Django's cache (shared by all processes when the cache is).

`ahit` for async views (/api/voice/chat), `hit` for sync ones (the Twilio webhooks); both count in the
same cache keys the same way. `client_address` is the address a per-source limit is keyed on.
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        """'30/m', '5/s', '1000/h', '100/10m'."""
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*", text or "")
        if not m:
            raise ValueError(f"bad rate {text!r}; use e.g. '30/m'")
        unit = {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(3)]
        return cls(int(m.group(1)), int(m.group(2) or 1) * unit)


def _window(key: str, rate: Rate, now: float) -> tuple[str, int]:
    window = int(now // rate.seconds)
    return f"ratelimit:{key}:{window}", window


def _verdict(count: int, window: int, rate: Rate, now: float) -> int | None:
    if count <= rate.count:
        return None
    return max(1, math.ceil((window + 1) * rate.seconds - now))


def _uncounted(key: str, exc: Exception) -> None:
    # The cache is Redis in production: when it is down or hangs (settings.CACHES bounds the wait), a
    # request is let through uncounted rather than refused or failed — a phone call must be answered.
    logger.warning("rate limit %s not counted: the cache is unavailable (%s)", key, exc)


async def ahit(key: str, rate: Rate, *, now: float | None = None) -> int | None:
    """Count one request for `key`; None if allowed (or if the cache is unavailable), else the seconds
    until the window resets."""
    now = time.time() if now is None else now
    cache_key, window = _window(key, rate, now)
    try:
        if await cache.aadd(cache_key, 1, timeout=rate.seconds + 1):
            count = 1
        else:
            try:
                count = await cache.aincr(cache_key)
            except ValueError:  # expired between add and incr
                await cache.aset(cache_key, 1, timeout=rate.seconds + 1)
                count = 1
    except Exception as exc:
        _uncounted(key, exc)
        return None
    return _verdict(count, window, rate, now)


def hit(key: str, rate: Rate, *, now: float | None = None) -> int | None:
    """`ahit` for synchronous code."""
    now = time.time() if now is None else now
    cache_key, window = _window(key, rate, now)
    try:
        if cache.add(cache_key, 1, timeout=rate.seconds + 1):
            count = 1
        else:
            try:
                count = cache.incr(cache_key)
            except ValueError:  # expired between add and incr
                cache.set(cache_key, 1, timeout=rate.seconds + 1)
                count = 1
    except Exception as exc:
        _uncounted(key, exc)
        return None
    return _verdict(count, window, rate, now)


def first_refusal(key: str, rate: Rate, *, now: float | None = None) -> bool:
    """True once per window for `key`: lets a caller log a flood once, not once per refused request."""
    now = time.time() if now is None else now
    cache_key, _ = _window(f"{key}:refused", rate, now)
    return bool(cache.add(cache_key, 1, timeout=rate.seconds + 1))


def client_address(request: HttpRequest) -> str:
    """The address a request came from, for per-source limits.

    `REMOTE_ADDR`, unless `TRUSTED_PROXY_COUNT` says N proxies of ours stand in front of the app: then
    the address the outermost of them saw, i.e. the Nth entry from the *right* of X-Forwarded-For
    (each proxy appends the address it received the request from; entries to the left of ours are
    whatever the client chose to send, so they are never trusted).
    """
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        hops = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR", "") or "unknown"
