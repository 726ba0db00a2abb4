from __future__ import annotations

import datetime as dt
import time
import types

import pytest
from django.core import signing
from django.utils import timezone

from telephony import tokens
from telephony.models import StreamTokenUse
from telephony.tokens import (
    StreamTokenExpired,
    StreamTokenInvalid,
    StreamTokenMissing,
    StreamTokenReused,
    StreamTokenWrongCall,
    aredeem_stream_token,
    issue_stream_token,
    redeem_stream_token,
)

pytestmark = pytest.mark.django_db

CALL = "CA" + "1" * 32
OTHER_CALL = "CA" + "2" * 32


def _later(monkeypatch, seconds: int) -> None:
    """Move the signing clock forward (django.core.signing reads time.time())."""
    now = time.time() + seconds
    monkeypatch.setattr(signing, "time", types.SimpleNamespace(time=lambda: now))


def test_it_redeems_a_fresh_token_for_its_call_and_returns_the_shop():
    token = issue_stream_token(call_sid=CALL, shop_id=7)
    assert redeem_stream_token(token, call_sid=CALL) == 7
    assert StreamTokenUse.objects.filter(call_sid=CALL).count() == 1


def test_it_fits_in_a_twilio_parameter():
    token = issue_stream_token(call_sid=CALL, shop_id=123456)
    assert len("token") + len(token) < 500
    assert token.isascii() and "?" not in token and "&" not in token


def test_it_opens_one_stream_only():
    token = issue_stream_token(call_sid=CALL, shop_id=7)
    redeem_stream_token(token, call_sid=CALL)
    with pytest.raises(StreamTokenReused):
        redeem_stream_token(token, call_sid=CALL)


def test_it_issues_a_different_token_each_time():
    first = issue_stream_token(call_sid=CALL, shop_id=7)
    second = issue_stream_token(call_sid=CALL, shop_id=7)
    assert first != second
    assert redeem_stream_token(first, call_sid=CALL) == redeem_stream_token(second, call_sid=CALL) == 7


def test_it_refuses_a_token_for_another_call_without_using_it_up():
    token = issue_stream_token(call_sid=CALL, shop_id=7)
    with pytest.raises(StreamTokenWrongCall):
        redeem_stream_token(token, call_sid=OTHER_CALL)
    assert redeem_stream_token(token, call_sid=CALL) == 7


def test_it_refuses_an_expired_token(monkeypatch, settings):
    settings.TWILIO_STREAM_TOKEN_SECONDS = 30
    token = issue_stream_token(call_sid=CALL, shop_id=7)
    _later(monkeypatch, 31)
    with pytest.raises(StreamTokenExpired) as exc:
        redeem_stream_token(token, call_sid=CALL)
    assert exc.value.reason == "expired"


def test_it_still_accepts_a_token_just_inside_its_lifetime(monkeypatch, settings):
    settings.TWILIO_STREAM_TOKEN_SECONDS = 30
    token = issue_stream_token(call_sid=CALL, shop_id=7)
    _later(monkeypatch, 25)
    assert redeem_stream_token(token, call_sid=CALL) == 7


@pytest.mark.parametrize("token", [None, ""])
def test_it_refuses_a_missing_token(token):
    with pytest.raises(StreamTokenMissing):
        redeem_stream_token(token, call_sid=CALL)


def test_it_refuses_a_tampered_token():
    token = issue_stream_token(call_sid=CALL, shop_id=7)
    _, rest = token.split(":", 1)
    forged = signing.b64_encode(f'{{"c":"{CALL}","s":8,"j":"x"}}'.encode()).decode() + ":" + rest
    with pytest.raises(StreamTokenInvalid):
        redeem_stream_token(forged, call_sid=CALL)
    with pytest.raises(StreamTokenInvalid):
        redeem_stream_token("not-a-token", call_sid=CALL)


def test_it_refuses_a_value_signed_for_another_purpose():
    other = signing.TimestampSigner(salt="something.else").sign_object({"c": CALL, "s": 7, "j": "abc"})
    with pytest.raises(StreamTokenInvalid):
        redeem_stream_token(other, call_sid=CALL)


def test_it_forgets_used_tokens_long_after_they_expired(monkeypatch):
    monkeypatch.setattr(tokens, "_next_purge", 0.0)  # this process has not purged yet
    old = StreamTokenUse.objects.create(jti="old", call_sid=OTHER_CALL, used_at=timezone.now() - dt.timedelta(days=1))
    redeem_stream_token(issue_stream_token(call_sid=CALL, shop_id=7), call_sid=CALL)
    assert not StreamTokenUse.objects.filter(pk=old.pk).exists()
    assert StreamTokenUse.objects.filter(call_sid=CALL).exists()


def test_it_purges_expired_tokens_at_most_once_a_minute(monkeypatch):
    monkeypatch.setattr(tokens, "_next_purge", 0.0)
    redeem_stream_token(issue_stream_token(call_sid=CALL, shop_id=7), call_sid=CALL)
    old = StreamTokenUse.objects.create(jti="old", call_sid=OTHER_CALL, used_at=timezone.now() - dt.timedelta(days=1))
    redeem_stream_token(issue_stream_token(call_sid=OTHER_CALL, shop_id=7), call_sid=OTHER_CALL)
    assert StreamTokenUse.objects.filter(pk=old.pk).exists()  # purged a moment ago: not yet again
    monkeypatch.setattr(tokens, "_next_purge", time.monotonic())  # a minute later
    redeem_stream_token(issue_stream_token(call_sid="CA" + "3" * 32, shop_id=7), call_sid="CA" + "3" * 32)
    assert not StreamTokenUse.objects.filter(pk=old.pk).exists()


@pytest.mark.django_db(transaction=True)
async def test_it_redeems_from_async_code_once():
    token = issue_stream_token(call_sid=CALL, shop_id=7)
    assert await aredeem_stream_token(token, call_sid=CALL) == 7
    with pytest.raises(StreamTokenReused):
        await aredeem_stream_token(token, call_sid=CALL)
