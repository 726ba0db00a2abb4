"""/ws/voice/stream/: the browser's call, through the real ASGI stack (origin check, session auth) or the
URL router with a user in the scope, around a VoiceSession."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.urls import path

from calls.models import CallLog
from receptionist.asgi import application
from shops.tests.factories import BusinessHoursFactory, MembershipFactory, ShopFactory, UserFactory
from voice import browser
from voice.consumers import BrowserVoiceConsumer
from voice.routing import websocket_urlpatterns

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


# -- with the real VoiceSession and the offline engine -------------------------------------------
real_app = URLRouter(websocket_urlpatterns)


async def receive_until(c: WebsocketCommunicator, done: Callable[[list[Any]], bool]) -> list[Any]:
    """Frames (JSON events as dicts, audio as bytes) until `done(frames)`; fails after TIMEOUT of quiet.
    Marks are echoed at once, as by a page whose playback is instant."""
    frames: list[Any] = []
    while not done(frames):
        message = await c.receive_output(TIMEOUT)
        if message["type"] == "websocket.close":
            frames.append(message)
        elif message.get("bytes") is not None:
            frames.append(message["bytes"])
        else:
            frames.append(json.loads(message["text"]))
            if frames[-1]["type"] == "mark":
                await c.send_to(text_data=message["text"])
    return frames


def said(frames: list[Any], role: str) -> list[str]:
    return [f["text"] for f in frames if isinstance(f, dict) and f.get("type") == "transcript" and f["role"] == role]


@database_sync_to_async
def open_hours_shop() -> Any:
    membership = MembershipFactory(shop__name="Elm Street Auto", shop__voice_engine="local")
    for weekday in range(5):
        BusinessHoursFactory(shop=membership.shop, weekday=weekday, opens_at=dt.time(8), closes_at=dt.time(17))
    return membership


@database_sync_to_async
def browser_call(call_sid: str) -> tuple[CallLog, list[tuple[str, str]]]:
    call = CallLog.objects.get(call_sid=call_sid)
    return call, list(call.turns.order_by("pk").values_list("role", "text"))


async def test_it_greets_answers_typed_text_and_logs_the_call_with_the_real_session():
    membership = await open_hours_shop()
    c = communicator(membership.user, membership.shop.slug, app=real_app)
    connected, _ = await c.connect()
    assert connected
    try:
        hello = await receive_json(c)
        assert hello["type"] == "hello" and hello["engine"] == "local"

        def greeted(frames: list[Any]) -> bool:
            return {"type": "state", "state": "listening"} in frames  # after the greeting has played

        greeting = await receive_until(c, greeted)
        assert said(greeting, "assistant") == [membership.shop.spoken_greeting]
        assert {"type": "engine", "engine": "local"} in greeting
        assert {"type": "state", "state": "speaking"} in greeting
        audio = b"".join(f for f in greeting if isinstance(f, bytes))
        assert len(audio) % 2 == 0 and max(audio) > 0  # PCM16, not silence

        await c.send_to(text_data=json.dumps({"type": "text", "text": "What are your hours?"}))
        reply = await receive_until(c, lambda frames: bool(said(frames, "assistant")))
        assert said(reply, "caller") == ["What are your hours?"]
        assert "Monday through Friday 8 AM to 5 PM" in said(reply, "assistant")[0]
    finally:
        await c.disconnect()

    call, turns = await browser_call(hello["call_sid"])
    assert call.shop_id == membership.shop.pk
    assert call.channel == CallLog.Channel.BROWSER
    assert call.caller_number == ""
    assert call.engine == "local"
    assert call.ended_at is not None and call.outcome == CallLog.Outcome.CALLER_HUNG_UP
    assert ("caller", "What are your hours?") in turns


async def test_it_closes_the_socket_after_the_session_says_goodbye():
    membership = await open_hours_shop()
    c = communicator(membership.user, membership.shop.slug, app=real_app)
    await c.connect()
    try:
        hello = await receive_json(c)
        await c.send_to(text_data=json.dumps({"type": "text", "text": "That's all, goodbye"}))
        frames = await receive_until(
            c, lambda frames: bool(frames) and frames[-1] == {"type": "websocket.close", "code": 1000}
        )
        assert frames[-1]["code"] == 1000
        assert said(frames, "caller") == ["That's all, goodbye"]
        greeting, *goodbye = said(frames, "assistant")
        assert greeting == membership.shop.spoken_greeting
        assert goodbye and "Have a great day" in goodbye[-1]  # said before the close
    finally:
        await c.disconnect()
    call, _ = await browser_call(hello["call_sid"])
    assert call.ended_at is not None and call.outcome == CallLog.Outcome.RESOLVED
