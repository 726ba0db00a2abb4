"""Short-lived, single-use tokens that let a media stream prove it belongs to a call we answered.

The voice webhook (signature-checked) issues one and hands it to Twilio as a `<Parameter name="token">`;
Twilio sends it back in the stream's `start.customParameters`; the media consumer redeems it before
it talks to the caller. A token binds the call SID and the shop, expires after
`settings.TWILIO_STREAM_TOKEN_SECONDS`, and opens one stream only (its `jti` is recorded in
`StreamTokenUse`, a database table so that every server process sees it).
"""

from __future__ import annotations

import datetime as dt
import secrets
import time

from channels.db import database_sync_to_async
from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from telephony.models import StreamTokenUse

SALT = "telephony.stream-token"
# Used rows are kept this much longer than a token lives (clock differences between processes).
_KEEP_USED_EXTRA = dt.timedelta(hours=1)
# Expired rows are deleted by a redemption at most this often per process: a DELETE at every call start
# cost ~2.4 ms of the GIL the event loop shares, for rows that only need to go eventually.
PURGE_EVERY_SECONDS = 60.0
_next_purge = 0.0  # time.monotonic() after which the next redemption purges


class StreamTokenError(Exception):
    """The token does not open this stream. `reason` is one of the subclasses' codes (for logs)."""

    reason = "invalid"


class StreamTokenMissing(StreamTokenError):
    reason = "missing"


class StreamTokenInvalid(StreamTokenError):
    reason = "invalid"


class StreamTokenExpired(StreamTokenError):
    reason = "expired"


class StreamTokenWrongCall(StreamTokenError):
    reason = "wrong_call"


class StreamTokenReused(StreamTokenError):
    reason = "reused"


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


def issue_stream_token(*, call_sid: str, shop_id: int) -> str:
    """Return a URL-safe token (~130 chars, well under Twilio's 500-char `<Parameter>` limit)."""
    payload = {"c": call_sid, "s": shop_id, "j": secrets.token_hex(8)}
    return _signer().sign_object(payload, compress=False)


def redeem_stream_token(token: str | None, *, call_sid: str) -> int:
    """Check `token` for the stream of `call_sid` and mark it used; return the shop id it was issued for.

    Raises StreamTokenMissing, StreamTokenInvalid (tampered or not ours), StreamTokenExpired,
    StreamTokenWrongCall (issued for another call; the token is *not* used up) or StreamTokenReused.
    """
    if not token:
        raise StreamTokenMissing("no stream token")
    try:
        payload = _signer().unsign_object(token, max_age=settings.TWILIO_STREAM_TOKEN_SECONDS)
    except signing.SignatureExpired as exc:
        raise StreamTokenExpired(str(exc)) from exc
    except signing.BadSignature as exc:
        raise StreamTokenInvalid(str(exc)) from exc
    try:
        token_call, shop_id, jti = str(payload["c"]), int(payload["s"]), str(payload["j"])
    except (KeyError, TypeError, ValueError) as exc:
        raise StreamTokenInvalid("malformed stream token") from exc
    if not call_sid or token_call != call_sid:
        raise StreamTokenWrongCall("stream token was issued for another call")

    now = timezone.now()
    try:
        with transaction.atomic():
            StreamTokenUse.objects.create(jti=jti, call_sid=call_sid, used_at=now)
    except IntegrityError as exc:
        raise StreamTokenReused("stream token already used") from exc
    _purge_used(now)
    return shop_id


def _purge_used(now: dt.datetime) -> None:
    global _next_purge  # noqa: PLW0603 - one schedule per process
    if time.monotonic() < _next_purge:
        return
    _next_purge = time.monotonic() + PURGE_EVERY_SECONDS
    keep = dt.timedelta(seconds=settings.TWILIO_STREAM_TOKEN_SECONDS) + _KEEP_USED_EXTRA
    StreamTokenUse.objects.filter(used_at__lt=now - keep).delete()


async def aredeem_stream_token(token: str | None, *, call_sid: str) -> int:
    """`redeem_stream_token` for the async media consumer (one DB hop at stream start)."""
    return await database_sync_to_async(redeem_stream_token)(token, call_sid=call_sid)
