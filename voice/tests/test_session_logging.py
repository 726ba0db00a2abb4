"""A voice call's log lines name the call and the shop, also those written by the tasks the session spawns
(the Realtime reader, the fallback) and by the media-stream consumer around it."""

from __future__ import annotations

import shutil
import uuid

import pytest
from asgiref.sync import async_to_sync

from voice.session import BRIDGE, SessionState, VoiceSession
from voice.testing.fake_realtime import FakeRealtime, Turn
from voice.testing.transport import FakeTransport

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
]


def test_the_fallback_a_session_spawns_logs_with_the_call_and_shop(shop, clock, settings, console_log):
    settings.OPENAI_API_KEY = "test-key"
    call_sid = f"CA{uuid.uuid4().hex}"
    script = [Turn(transcript="what time do you close today", reply="We close at five thirty.", drop_after=2)]

    async def scenario():
        async with FakeRealtime(script) as fake:
            settings.OPENAI_REALTIME_URL = fake.url
            transport = FakeTransport()
            session = VoiceSession(
                shop=shop, transport=transport, clock=clock, call_sid=call_sid, channel="phone",
                caller_number="+15555550123",
            )  # fmt: skip
            transport.attach(session)
            await session.start()
            await transport.wait_for(lambda: session.state == SessionState.LISTENING)
            await session.receive_text("what time do you close today")
            await transport.wait_for(lambda: BRIDGE in transport.transcripts("assistant"))
            await session.stop()

    async_to_sync(scenario)()

    switched = [line for line in console_log() if "switching to the offline engine" in line["message"]]
    assert switched, console_log()
    for line in switched:
        assert (line["call_sid"], line["shop"]) == (call_sid, shop.slug)
        assert line["logger"] == "voice.session"


def test_a_chat_turn_logs_with_its_session_and_shop(shop, client, settings, console_log):
    settings.OPENAI_API_KEY = "sk-test"
    settings.OPENAI_BASE_URL = "http://127.0.0.1:1/v1"  # nothing listens: the OpenAI engine fails at once
    token = shop.rotate_api_token()

    response = client.post(
        "/api/voice/chat",
        {"shop": shop.slug, "message": "where are you located", "caller": "+15555550123"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 200
    session = response.json()["session"]
    failed = [line for line in console_log() if "switching to offline" in line["message"]]
    assert failed, console_log()
    assert all((line["call_sid"], line["shop"]) == (session, shop.slug) for line in failed)
