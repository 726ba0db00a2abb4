"""Twilio webhooks are rate-limited per source address (WEBHOOK_RATE_LIMIT), before any signature work.

Each test uses addresses of its own (random), because the limiter's counters live in the shared cache
(Redis with REDIS_URL) and outlive a test.
"""

from __future__ import annotations

import logging
import secrets
from urllib.parse import urlencode

import pytest

from calls.models import CallLog
from shops.tests.factories import ShopFactory
from telephony.tests.fakes import PUBLIC_BASE_URL, call_params

pytestmark = pytest.mark.django_db

VOICE = "/telephony/twilio/voice/"


def random_address() -> str:
    return "10.{}.{}.{}".format(*secrets.token_bytes(3))


def post(twilio, path: str, params: dict[str, str], *, signed: bool = True, **meta: str):
    headers = {"X-Twilio-Signature": twilio.sign(PUBLIC_BASE_URL + path, params) if signed else "forged"}
    return twilio.client.post(
        path, data=urlencode(params), content_type="application/x-www-form-urlencoded", headers=headers, **meta
    )


@pytest.fixture
def shop():
    return ShopFactory(phone_number="+15557000000", transfer_number="+15557009999")


def test_it_answers_a_flood_from_one_address_with_429_before_checking_signatures(twilio, shop, settings, caplog):
    settings.WEBHOOK_RATE_LIMIT = "3/h"
    flooder = random_address()
    caplog.set_level(logging.WARNING, logger="telephony.signatures")

    statuses = [post(twilio, VOICE, call_params(), signed=False, REMOTE_ADDR=flooder).status_code for _ in range(3)]
    assert statuses == [403, 403, 403]
    assert sum("bad signature" in r.getMessage() for r in caplog.records) == 3

    caplog.clear()
    refused = [post(twilio, VOICE, call_params(), REMOTE_ADDR=flooder) for _ in range(5)]
    assert [r.status_code for r in refused] == [429] * 5  # even correctly signed ones, while over
    assert 1 <= int(refused[0]["Retry-After"]) <= 3600
    messages = [r.getMessage() for r in caplog.records]
    assert not any("signature" in m for m in messages)  # no HMAC was computed for a refused request
    assert sum("over WEBHOOK_RATE_LIMIT" in m and flooder in m for m in messages) == 1  # logged once, not 5 times
    assert not CallLog.objects.exists()


def test_it_keeps_serving_other_addresses_while_one_is_over(twilio, shop, settings):
    settings.WEBHOOK_RATE_LIMIT = "2/h"
    flooder, twilio_edge = random_address(), random_address()
    for _ in range(3):
        post(twilio, VOICE, call_params(), signed=False, REMOTE_ADDR=flooder)
    assert post(twilio, VOICE, call_params(), REMOTE_ADDR=flooder).status_code == 429

    response = post(twilio, VOICE, call_params(), REMOTE_ADDR=twilio_edge)
    assert response.status_code == 200
    assert b"<Connect" in response.content
    assert CallLog.objects.filter(call_sid=call_params()["CallSid"]).exists()


def test_it_never_starves_signed_calls_at_the_default_limit(twilio, shop, settings):
    """Fifty whole calls from one Twilio address within a minute — every webhook a call makes — pass."""
    assert settings.WEBHOOK_RATE_LIMIT == "600/m"
    edge = random_address()
    answered = []
    for n in range(50):
        sid = f"CA{n:032d}"
        call = call_params(CallSid=sid)
        answered.append(post(twilio, VOICE, call, REMOTE_ADDR=edge).status_code)
        CallLog.objects.filter(call_sid=sid).update(outcome=CallLog.Outcome.TRANSFERRED)
        answered.append(post(twilio, "/telephony/twilio/connect-action/", call, REMOTE_ADDR=edge).status_code)
        dial = {**call, "DialCallStatus": "no-answer"}
        answered.append(post(twilio, "/telephony/twilio/dial-action/", dial, REMOTE_ADDR=edge).status_code)
        for step, said in [("name", "Jane"), ("number", "5555550123"), ("reason", "brakes")]:
            answered.append(
                post(
                    twilio, f"/telephony/twilio/message/{step}/", {**call, "SpeechResult": said}, REMOTE_ADDR=edge
                ).status_code
            )
        done = {**call, "CallStatus": "completed", "CallDuration": "42"}
        answered.append(post(twilio, "/telephony/twilio/status/", done, REMOTE_ADDR=edge).status_code)
    assert len(answered) == 350
    assert set(answered) <= {200, 204}
    assert CallLog.objects.filter(outcome=CallLog.Outcome.CALLBACK_REQUESTED).count() == 50


def test_it_counts_the_address_our_proxy_saw_not_what_the_client_wrote(twilio, shop, settings):
    settings.WEBHOOK_RATE_LIMIT = "2/h"
    settings.TRUSTED_PROXY_COUNT = 1
    real, other = random_address(), random_address()
    # The client writes anything it likes on the left; our proxy appends the address it saw.
    statuses = [
        post(
            twilio,
            VOICE,
            call_params(),
            signed=False,
            REMOTE_ADDR="127.0.0.1",
            HTTP_X_FORWARDED_FOR=f"{forged}, {real}",
        ).status_code
        for forged in (random_address(), random_address(), random_address())
    ]
    assert statuses == [403, 403, 429]
    fresh = post(twilio, VOICE, call_params(), REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=f"{real}, {other}")
    assert fresh.status_code == 200


def test_it_ignores_forwarded_for_when_no_proxy_is_trusted(twilio, shop, settings):
    settings.WEBHOOK_RATE_LIMIT = "2/h"
    assert settings.TRUSTED_PROXY_COUNT == 0
    direct = random_address()
    statuses = [
        post(
            twilio, VOICE, call_params(), signed=False, REMOTE_ADDR=direct, HTTP_X_FORWARDED_FOR=random_address()
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [403, 403, 429]
