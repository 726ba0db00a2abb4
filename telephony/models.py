"""Telephony's own bookkeeping (call data itself lives in calls.CallLog)."""

from __future__ import annotations

from django.db import models


class StreamTokenUse(models.Model):
    """A media-stream token that has been redeemed: each token opens one stream, once.

    Kept in the database rather than the cache because the default cache is per process and the
    WebSocket may land on any server process; the unique `jti` makes "first redeemer wins" atomic on
    every backend (SQLite and PostgreSQL). Rows are only needed while the token could still be valid,
    so redeeming purges old ones (see telephony.tokens).
    """

    jti = models.CharField(max_length=32, unique=True)
    call_sid = models.CharField(max_length=64)
    used_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"stream token {self.jti} for {self.call_sid}"
