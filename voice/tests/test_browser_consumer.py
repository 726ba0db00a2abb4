"""/ws/voice/stream/: the browser's call, through the real ASGI stack (origin check, session auth) or the
URL router with a user in the scope, around a VoiceSession."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.urls import path

from receptionist.asgi import application
from shops.tests.factories import MembershipFactory, ShopFactory, UserFactory
from voice import browser
from voice.consumers import BrowserVoiceConsumer

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 5


class RecordingSession:
    """Stands in for VoiceSession at the consumer's seam: records what the consumer forwards and, on
    start, speaks through the transport the way a session does (events, audio, a mark)."""

    instances: list[RecordingSession] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.transport = kwargs["transport"]
        self.engine_name = "local"
        self.calls: list[tuple[str, Any]] = []
        self.changed = asyncio.Event()
        self.fail_on: str | None = None
        RecordingSession.instances.append(self)

    def _record(self, name: str, value: Any = None) -> None:
        self.calls.append((name, value))
        self.changed.set()
        if self.fail_on == name:
            raise RuntimeError(f"{name} broke")

    async def wait_for(self, name: str) -> list[Any]:
        async def seen() -> list[Any]:
            while not (values := [v for n, v in self.calls if n == name]):
                self.changed.clear()
                await self.changed.wait()
            return values

        return await asyncio.wait_for(seen(), TIMEOUT)

    async def start(self) -> None:
        await self.transport.send_event({"type": "engine", "engine": "local"})
        await self.transport.send_event({"type": "state", "state": "speaking"})
        await self.transport.send_event({"type": "transcript", "role": "assistant", "text": "Hello!"})
        await self.transport.send_audio(b"\x01\x00" * 24000)  # 1 s at 24 kHz: sent in two frames
        await self.transport.send_mark("greeting")
        self._record("start")

    async def receive_audio(self, audio: bytes) -> None:
        self._record("audio", audio)

    async def receive_text(self, text: str) -> None:
        self._record("text", text)
        await self.transport.send_event({"type": "transcript", "role": "assistant", "text": f"You said {text}"})

    async def mark_played(self, name: str) -> None:
        self._record("mark", name)

    async def dtmf(self, digit: str) -> None:
        self._record("dtmf", digit)

    async def stop(self, reason: str = "caller_hung_up") -> None:
        self._record("stop", reason)


@pytest.fixture(autouse=True)
def _forget_sessions():
    RecordingSession.instances.clear()
    yield
    RecordingSession.instances.clear()


fake_app = URLRouter([path(browser.WS_PATH, BrowserVoiceConsumer.as_asgi(session_factory=RecordingSession))])


def communicator(user: Any, slug: str, app: Any = fake_app) -> WebsocketCommunicator:
    c = WebsocketCommunicator(app, f"/ws/voice/stream/?shop={slug}")
    c.scope["user"] = user
    return c


async def receive_json(c: WebsocketCommunicator) -> dict[str, Any]:
    return json.loads(await c.receive_from(TIMEOUT))


async def member(**kwargs: Any) -> Any:
    return await database_sync_to_async(MembershipFactory)(**kwargs)


async def connected_call(c: WebsocketCommunicator) -> tuple[dict[str, Any], RecordingSession]:
    connected, _ = await c.connect()
    assert connected
    hello = await receive_json(c)
    session = RecordingSession.instances[-1]
    await session.wait_for("start")
    return hello, session


async def drain_greeting(c: WebsocketCommunicator) -> list[Any]:
    """engine, state, transcript, two audio frames, mark."""
    out = []
    for _ in range(6):
        message = await c.receive_output(TIMEOUT)
        out.append(message.get("bytes") if message.get("bytes") is not None else json.loads(message["text"]))
    return out


async def test_it_rejects_anonymous_users_with_4401():
    shop = await database_sync_to_async(ShopFactory)()
    c = communicator(AnonymousUser(), shop.slug)
    connected, _ = await c.connect()
    assert connected  # accepted only to say why it closes
    assert await c.receive_output(TIMEOUT) == {"type": "websocket.close", "code": 4401}
    await c.disconnect()
    assert RecordingSession.instances == []


async def test_it_rejects_non_members_and_unknown_shops_alike_with_4403():
    membership = await member()
    stranger = await database_sync_to_async(UserFactory)()
    for user, slug in ((stranger, membership.shop.slug), (membership.user, "no-such-shop"), (membership.user, "")):
        c = communicator(user, slug)
        await c.connect()
        assert await c.receive_output(TIMEOUT) == {"type": "websocket.close", "code": 4403}
        await c.disconnect()
    assert RecordingSession.instances == []


async def test_it_rejects_foreign_origins_before_anything_else():
    membership = await member()
    c = WebsocketCommunicator(
        application, f"/ws/voice/stream/?shop={membership.shop.slug}", headers=[(b"origin", b"https://evil.test")]
    )
    connected, _ = await c.connect()
    assert not connected
    await c.disconnect()


async def test_it_says_hello_and_relays_what_the_session_sends():
    membership = await member(shop__name="Elm Street Auto", role="staff")
    c = communicator(membership.user, membership.shop.slug)
    try:
        hello, session = await connected_call(c)
        assert hello["type"] == "hello"
        assert hello["call_sid"].startswith("browser-")
        assert hello["shop"] == {"slug": membership.shop.slug, "name": "Elm Street Auto"}
        assert hello["engine"] == "local"
        assert hello["input"] == {"encoding": "pcm16", "sample_rate": 16000, "frame_ms": 20}
        assert hello["output"] == {"encoding": "pcm16", "sample_rate": 24000}
        assert session.kwargs["shop"] == membership.shop
        assert session.kwargs["channel"] == "browser"
        assert session.kwargs["caller_number"] == ""  # the owner testing: not verified as any customer
        assert session.kwargs["call_sid"] == hello["call_sid"]

        engine, state, said, audio1, audio2, mark = await drain_greeting(c)
        assert engine == {"type": "engine", "engine": "local"}
        assert state == {"type": "state", "state": "speaking"}
        assert said == {"type": "transcript", "role": "assistant", "text": "Hello!"}
        assert len(audio1) == browser.MAX_OUTPUT_FRAME and audio1 + audio2 == b"\x01\x00" * 24000
        assert mark == {"type": "mark", "name": "greeting"}
    finally:
        await c.disconnect()


async def test_it_forwards_audio_text_marks_and_key_presses():
    membership = await member()
    c = communicator(membership.user, membership.shop.slug)
    try:
        _, session = await connected_call(c)
        await drain_greeting(c)
        frame = b"\x00\x10" * 320  # 20 ms at 16 kHz
        await c.send_to(bytes_data=frame)
        await c.send_to(text_data=json.dumps({"type": "mark", "name": "greeting"}))
        await c.send_to(text_data=json.dumps({"type": "dtmf", "digit": "0"}))
        await c.send_to(text_data=json.dumps({"type": "text", "text": "  what are your hours  "}))
        assert await receive_json(c) == {
            "type": "transcript",
            "role": "assistant",
            "text": "You said what are your hours",
        }
        assert session.calls[1:] == [
            ("audio", frame),
            ("mark", "greeting"),
            ("dtmf", "0"),
            ("text", "what are your hours"),
        ]
    finally:
        await c.disconnect()


async def test_it_ignores_bad_frames_and_keeps_the_call(caplog):
    membership = await member()
    c = communicator(membership.user, membership.shop.slug)
    try:
        _, session = await connected_call(c)
        await drain_greeting(c)
        for bad in (b"\x00\x01\x02", b"\x00" * (browser.MAX_AUDIO_FRAME + 2)):
            await c.send_to(bytes_data=bad)
        for bad in (
            "not json",
            "[1, 2]",
            '{"type": "explode"}',
            '{"type": "text", "text": ""}',
            '{"type": "text", "text": 42}',
            '{"type": "dtmf", "digit": "A"}',
            '{"type": "mark"}',
        ):
            await c.send_to(text_data=bad)
        await c.send_to(text_data=json.dumps({"type": "text", "text": "still there?"}))
        assert (await receive_json(c))["text"] == "You said still there?"
        assert [name for name, _ in session.calls] == ["start", "text"]
        assert sum("ignored a bad frame" in r.getMessage() for r in caplog.records) == 9
    finally:
        await c.disconnect()


async def test_it_stops_the_session_when_the_page_hangs_up_or_disconnects():
    membership = await member()
    c = communicator(membership.user, membership.shop.slug)
    _, session = await connected_call(c)
    await drain_greeting(c)
    await c.send_to(text_data=json.dumps({"type": "stop"}))
    assert await c.receive_output(TIMEOUT) == {"type": "websocket.close", "code": 1000}
    assert await session.wait_for("stop") == ["caller_hung_up"]
    await c.disconnect()  # the browser's side of the close: stop again is harmless (idempotent)

    c = communicator(membership.user, membership.shop.slug)
    _, session = await connected_call(c)
    await c.disconnect()
    assert await session.wait_for("stop") == ["caller_hung_up"]


async def test_it_ends_the_call_with_1011_when_the_session_fails():
    membership = await member()
    c = communicator(membership.user, membership.shop.slug)
    try:
        _, session = await connected_call(c)
        await drain_greeting(c)
        session.fail_on = "text"
        await c.send_to(text_data=json.dumps({"type": "text", "text": "hello"}))
        assert await c.receive_output(TIMEOUT) == {"type": "websocket.close", "code": 1011}
        assert await session.wait_for("stop") == ["failed"]
    finally:
        await c.disconnect()


async def test_it_closes_the_socket_when_the_session_hangs_up():
    membership = await member()
    c = communicator(membership.user, membership.shop.slug)
    try:
        _, session = await connected_call(c)
        await drain_greeting(c)
        await session.transport.close()
        assert await c.receive_output(TIMEOUT) == {"type": "websocket.close", "code": 1000}
        await session.transport.send_event({"type": "state", "state": "ended"})  # dropped, no error
        assert await c.receive_nothing()
    finally:
        await c.disconnect()
