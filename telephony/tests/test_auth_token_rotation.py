"""Rotating the Twilio auth token without refusing calls (docs/runbooks/rotating-secrets.md): the new
token is TWILIO_AUTH_TOKEN, the old primary (which Twilio signs with until the new one is promoted) is in
TWILIO_AUTH_TOKEN_FALLBACKS until it is removed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from twilio.request_validator import RequestValidator

from shops.tests.factories import ShopFactory
from telephony.signatures import Verdict, check_websocket
from telephony.tests.fakes import AUTH_TOKEN, PUBLIC_BASE_URL, call_params, twiml

pytestmark = pytest.mark.django_db

VOICE = "/telephony/twilio/voice/"
STREAM = "/telephony/twilio/stream/"
OLD_TOKEN = "old-primary-auth-token"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def shop():
    return ShopFactory(phone_number="+15557000000")


def signed_with(token: str, url: str, params: dict[str, str]) -> str:
    return RequestValidator(token).compute_signature(url, params)


def test_it_accepts_webhooks_signed_with_the_old_token_while_it_is_a_fallback(twilio, shop, settings):
    settings.TWILIO_AUTH_TOKEN_FALLBACKS = [OLD_TOKEN]
    params = call_params()
    twiml(twilio.post(VOICE, params, signature=signed_with(OLD_TOKEN, PUBLIC_BASE_URL + VOICE, params)))
    twiml(twilio.post(VOICE, call_params(CallSid="CA2"), signature=None))  # the new token, signed by the fake

    settings.TWILIO_AUTH_TOKEN_FALLBACKS = []
    params = call_params(CallSid="CA3")
    signature = signed_with(OLD_TOKEN, PUBLIC_BASE_URL + VOICE, params)
    assert twilio.post(VOICE, params, signature=signature).status_code == 403


def test_it_accepts_a_media_stream_handshake_signed_with_the_old_token_while_it_is_a_fallback(settings):
    signature = signed_with(OLD_TOKEN, "wss://receptionist.example.com" + STREAM, {})
    scope = {
        "type": "websocket",
        "path": STREAM,
        "query_string": b"",
        "headers": [(b"x-twilio-signature", signature.encode())],
    }
    settings.TWILIO_AUTH_TOKEN_FALLBACKS = [OLD_TOKEN]
    assert check_websocket(scope) is Verdict.VALID
    settings.TWILIO_AUTH_TOKEN_FALLBACKS = []
    assert check_websocket(scope) is Verdict.INVALID


def test_it_reads_the_fallback_tokens_from_the_environment():
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "TWILIO_AUTH_TOKEN_FALLBACKS")}
    env.update(
        DJANGO_SETTINGS_MODULE="receptionist.settings",
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_AUTH_TOKEN_FALLBACKS=f"{OLD_TOKEN},older-token",
    )
    probe = (
        "import django; from django.conf import settings; django.setup(); print(settings.TWILIO_AUTH_TOKEN_FALLBACKS)"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str([OLD_TOKEN, "older-token"])
