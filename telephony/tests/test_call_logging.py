"""The media-stream consumer's log lines name the call and its shop, with the caller's number masked."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from calls.tests.factories import CallLogFactory
from shops.tests.factories import ShopFactory
from telephony.consumers import TwilioMediaConsumer
from telephony.tests.test_media_consumer import CALL, PATH, TIMEOUT, signed_headers, start_frame
from telephony.tokens import issue_stream_token

pytestmark = pytest.mark.django_db(transaction=True)


class QuietSession:
    """Stands in for VoiceSession (which binds the call itself): what is logged here is the consumer's."""

    started: asyncio.Event

    def __init__(self, **kwargs):
        pass

    async def start(self) -> None:
        QuietSession.started.set()

    async def receive_audio_b64(self, payload: str) -> None:
        pass

    async def mark_played(self, name: str) -> None:
        pass

    async def dtmf(self, digit: str) -> None:
        pass

    async def stop(self, *, reason: str = "") -> None:
        pass


async def test_the_media_stream_logs_name_the_call_and_shop_and_mask_the_caller(monkeypatch, console_log):
    QuietSession.started = asyncio.Event()
    monkeypatch.setattr(TwilioMediaConsumer, "session_factory", staticmethod(QuietSession))
    shop = await database_sync_to_async(ShopFactory)(slug="elm-street-auto", phone_number="+15557000000")
    await database_sync_to_async(CallLogFactory)(shop=shop, call_sid=CALL, caller_number="+15555550123")
    token = await database_sync_to_async(issue_stream_token)(call_sid=CALL, shop_id=shop.pk)

    communicator = WebsocketCommunicator(TwilioMediaConsumer.as_asgi(), PATH, headers=signed_headers())
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    await communicator.send_json_to(start_frame(token))
    await asyncio.wait_for(QuietSession.started.wait(), TIMEOUT)
    await communicator.send_to(text_data="not json")
    await communicator.send_json_to({"event": "stop", "streamSid": "MZ" + "4" * 32})
    await communicator.receive_output(timeout=TIMEOUT)  # the consumer closes the socket
    await communicator.disconnect()

    lines = [line for line in console_log() if line["logger"] == "telephony.consumers"]
    messages = [line["message"] for line in lines]
    assert any("caller •••0123" in m for m in messages), messages
    assert any("ignored not_json frame" in m for m in messages), messages
    assert any(f"media stream for call {CALL} closed" in m for m in messages), messages
    assert all((line["call_sid"], line["shop"]) == (CALL, "elm-street-auto") for line in lines)
    assert "5555550123" not in str(console_log())
