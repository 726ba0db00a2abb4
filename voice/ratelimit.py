"""A fixed-window rate limit on Django's cache (shared by all processes when the cache is)."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

from django.core.cache import cache


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


async def ahit(key: str, rate: Rate, *, now: float | None = None) -> int | None:
    """Count one request for `key`; None if allowed, else the seconds until the window resets."""
    now = time.time() if now is None else now
    window = int(now // rate.seconds)
    cache_key = f"ratelimit:{key}:{window}"
    if await cache.aadd(cache_key, 1, timeout=rate.seconds + 1):
        count = 1
    else:
        try:
            count = await cache.aincr(cache_key)
        except ValueError:  # expired between add and incr
            await cache.aset(cache_key, 1, timeout=rate.seconds + 1)
            count = 1
    if count <= rate.count:
        return None
    return max(1, math.ceil((window + 1) * rate.seconds - now))
