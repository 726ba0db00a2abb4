"""Twilio settings for every telephony test, and the `twilio` fixture that makes signed webhook requests."""

from __future__ import annotations

import pytest

from telephony.tests.fakes import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_BASE_URL, FakeTwilio


@pytest.fixture(autouse=True)
def twilio_settings(settings):
    settings.TWILIO_ACCOUNT_SID = ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.PUBLIC_BASE_URL = PUBLIC_BASE_URL
    settings.TWILIO_STREAM_TOKEN_SECONDS = 60
    return settings


@pytest.fixture
def twilio(client) -> FakeTwilio:
    return FakeTwilio(client)
