"""The Twilio media-stream consumer with a recording session in place of VoiceSession: handshake and
token checks, frames in → session inputs, Transport calls → Twilio frames out, bad frames ignored."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from twilio.request_validator import RequestValidator

from calls.tests.factories import CallLogFactory
from receptionist.asgi import application
from shops.tests.factories import ShopFactory
from telephony import consumers
from telephony.consumers import CallState, TwilioMediaConsumer, call_state_for
from telephony.tests.fakes import ACCOUNT_SID, AUTH_TOKEN
from telephony.tokens import issue_stream_token, redeem_stream_token

pytestmark = pytest.mark.django_db(transaction=True)

PATH = "/telephony/twilio/stream/"
WSS_URL = "wss://receptionist.example.com/telephony/twilio/stream/"
CALL = "CA" + "3" * 32
STREAM = "MZ" + "4" * 32
TIMEOUT = 5


class RecordingSession:
    """Stands in for VoiceSession: records every input, and lets a test act as the session."""

    instances: list[RecordingSession] = []
    created: asyncio.Event

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.transport = kwargs["transport"]
        self.calls: list[tuple[str, Any]] = []
        self.changed = asyncio.Event()
        RecordingSession.instances.append(self)
        RecordingSession.created.set()

    def _record(self, name: str, value: Any = None) -> None:
        self.calls.append((name, value))
        self.changed.set()

    async def wait_for(self, name: str, count: int = 1) -> list[Any]:
        async with asyncio.timeout(TIMEOUT):
            while len(self.values(name)) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.values(name)

    def values(self, name: str) -> list[Any]:
        return [value for call, value in self.calls if call == name]

    async def start(self) -> None:
        self._record("start")

    async def receive_audio_b64(self, payload: str) -> None:
        self._record("audio", payload)

    async def mark_played(self, name: str) -> None:
        self._record("mark", name)

    async def dtmf(self, digit: str) -> None:
        self._record("dtmf", digit)

    async def stop(self, *, reason: str = "") -> None:
        self._record("stop", reason)


@pytest.fixture(autouse=True)
def recording_sessions(monkeypatch):
    RecordingSession.instances = []
    RecordingSession.created = asyncio.Event()
    monkeypatch.setattr(TwilioMediaConsumer, "session_factory", staticmethod(RecordingSession))
    return RecordingSession.instances


@pytest.fixture
def call():
    shop = ShopFactory(phone_number="+15557000000")
    return CallLogFactory(shop=shop, call_sid=CALL, caller_number="+15555550123")


def signed_headers(url: str = WSS_URL) -> list[tuple[bytes, bytes]]:
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, {})
    return [(b"x-twilio-signature", signature.encode()), (b"host", b"receptionist.example.com")]


def start_frame(token: str | None, *, call_sid: str = CALL, media_format: dict | None = None) -> dict:
    params = {"callSid": call_sid, "caller": "+15550000000"}
    if token is not None:
        params["token"] = token
    return {
        "event": "start",
        "sequenceNumber": "1",
        "streamSid": STREAM,
        "start": {
            "streamSid": STREAM,
            "accountSid": ACCOUNT_SID,
            "callSid": call_sid,
            "tracks": ["inbound"],
            "customParameters": params,
            "mediaFormat": media_format or {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
    }


def media_frame(payload: str, n: int = 1) -> dict:
    return {
        "event": "media",
        "sequenceNumber": str(n + 1),
        "streamSid": STREAM,
        "media": {"track": "inbound", "chunk": str(n), "timestamp": str(20 * n), "payload": payload},
    }


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def open_stream(app=None) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(app or TwilioMediaConsumer.as_asgi(), PATH, headers=signed_headers())
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    await communicator.send_json_to({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    return communicator


async def started(call) -> tuple[WebsocketCommunicator, RecordingSession]:
    communicator = await open_stream()
    token = await database_sync_to_async(issue_stream_token)(call_sid=call.call_sid, shop_id=call.shop_id)
    await communicator.send_json_to(start_frame(token))
    await asyncio.wait_for(_first_session(), TIMEOUT)
    session = RecordingSession.instances[0]
    await session.wait_for("start")
    return communicator, session


async def _first_session() -> None:
    await RecordingSession.created.wait()


async def closed_with(communicator: WebsocketCommunicator) -> int:
    output = await communicator.receive_output(timeout=TIMEOUT)
    assert output["type"] == "websocket.close", output
    return output.get("code", 1000)


# ---------------------------------------------------------------------------------------------
# Who may open a stream
# ---------------------------------------------------------------------------------------------
async def test_it_is_routed_at_the_stream_path_of_the_asgi_application(call):
    communicator = await open_stream(application)
    await communicator.disconnect()


async def test_it_refuses_an_upgrade_without_a_valid_signature():
    for headers in ([], signed_headers("wss://elsewhere.example.com/telephony/twilio/stream/")):
        communicator = WebsocketCommunicator(TwilioMediaConsumer.as_asgi(), PATH, headers=headers)
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert not connected
        await communicator.disconnect()


@pytest.mark.parametrize("problem", ["missing", "forged", "other_call", "reused"])
async def test_it_closes_a_stream_whose_token_does_not_open_this_call(call, recording_sessions, problem):
    token = await database_sync_to_async(issue_stream_token)(call_sid=call.call_sid, shop_id=call.shop_id)
    if problem == "reused":
        await database_sync_to_async(redeem_stream_token)(token, call_sid=CALL)
    communicator = await open_stream()
    frame = {
        "missing": start_frame(None),
        "forged": start_frame(token[:-4] + "AAAA"),
        "other_call": start_frame(token, call_sid="CA" + "9" * 32),
        "reused": start_frame(token),
    }[problem]
    await communicator.send_json_to(frame)
    assert await closed_with(communicator) == consumers.CLOSE_FORBIDDEN
    assert recording_sessions == []
    await communicator.disconnect()


async def test_it_hands_the_call_back_politely_when_the_audio_is_not_mulaw_8k(call, recording_sessions):
    communicator = await open_stream()
    token = await database_sync_to_async(issue_stream_token)(call_sid=CALL, shop_id=call.shop_id)
    await communicator.send_json_to(
        start_frame(token, media_format={"encoding": "audio/l16", "sampleRate": 16000, "channels": 1})
    )
    assert await closed_with(communicator) == consumers.CLOSE_UNSUPPORTED
    assert recording_sessions == []
    await communicator.disconnect()


# ---------------------------------------------------------------------------------------------
# Twilio → session
# ---------------------------------------------------------------------------------------------
async def test_it_starts_a_phone_session_with_the_caller_number_the_webhook_recorded(call):
    communicator, session = await started(call)
    assert session.kwargs["shop"].pk == call.shop_id
    assert session.kwargs["call_sid"] == CALL
    assert session.kwargs["channel"] == "phone"
    # Not the stream's `caller` parameter: the CallLog's number (from the signed webhook).
    assert session.kwargs["caller_number"] == "+15555550123"
    assert session.transport.stream_sid == STREAM
    await communicator.disconnect()


async def test_it_passes_caller_audio_through_untouched(call):
    communicator, session = await started(call)
    payloads = [b64(bytes([n]) * 160) for n in range(3)]
    for n, payload in enumerate(payloads):
        await communicator.send_json_to(media_frame(payload, n))
    assert await session.wait_for("audio", 3) == payloads
    await communicator.disconnect()


async def test_it_takes_compact_and_spaced_media_frames_alike(call):
    communicator, session = await started(call)
    compact, spaced, outbound = b64(b"\x01" * 160), b64(b"\x02" * 160), b64(b"\x03" * 160)
    await communicator.send_to(text_data=json.dumps(media_frame(compact), separators=(",", ":")))
    await communicator.send_to(text_data=json.dumps(media_frame(spaced)))
    frame = media_frame(outbound)
    frame["media"]["track"] = "outbound"
    await communicator.send_to(text_data=json.dumps(frame, separators=(",", ":")))
    await communicator.send_json_to(media_frame(spaced))
    assert await session.wait_for("audio", 3) == [compact, spaced, spaced]
    await communicator.disconnect()


def test_it_slices_the_payload_only_out_of_unambiguous_media_frames():
    payload = b64(b"\xff" * 160)
    compact = json.dumps(media_frame(payload), separators=(",", ":"))
    assert consumers._media_payload(compact) == payload
    assert consumers._media_payload(json.dumps(media_frame(payload))) == payload
    twice = json.dumps({**media_frame(payload), "extra": {"payload": "AAAA"}})
    assert consumers._media_payload(twice) is None
    late_event = json.dumps({"streamSid": STREAM, "event": "media", "media": {"payload": payload}})
    assert consumers._media_payload(late_event) is None  # parsed in full instead
    assert consumers._media_payload(json.dumps({"event": "mark", "mark": {"name": "payload"}})) is None


async def test_it_reports_marks_and_key_presses(call):
    communicator, session = await started(call)
    mark = {"event": "mark", "sequenceNumber": "5", "streamSid": STREAM, "mark": {"name": "g1"}}
    await communicator.send_json_to(mark)
    await communicator.send_json_to(
        {"event": "dtmf", "sequenceNumber": "6", "streamSid": STREAM, "dtmf": {"track": "inbound_track", "digit": "0"}}
    )
    assert await session.wait_for("mark") == ["g1"]
    assert await session.wait_for("dtmf") == ["0"]
    await communicator.disconnect()


async def test_it_stops_the_session_when_twilio_stops_the_stream(call):
    communicator, session = await started(call)
    stop = {"accountSid": ACCOUNT_SID, "callSid": CALL}
    await communicator.send_json_to({"event": "stop", "sequenceNumber": "9", "streamSid": STREAM, "stop": stop})
    assert await session.wait_for("stop") == ["caller_hung_up"]
    await closed_with(communicator)
    await communicator.disconnect()
    assert session.values("stop") == ["caller_hung_up"]  # once


async def test_it_stops_the_session_when_the_socket_drops_without_stop(call):
    communicator, session = await started(call)
    await communicator.disconnect(code=1006)
    assert await session.wait_for("stop") == ["failed"]


async def test_it_ignores_bad_frames_and_keeps_the_call_going(call, caplog):
    caplog.set_level(logging.WARNING, logger="telephony.consumers")
    communicator = await open_stream()
    await communicator.send_json_to(media_frame(b64(b"\xff" * 160)))  # before start
    communicator_session = await _start_on(communicator, call)
    for _ in range(3):
        await communicator.send_to(text_data="not json")
    await communicator.send_to(bytes_data=b"\x00\x01")
    await communicator.send_to(text_data=json.dumps(media_frame("A" * (70 * 1024))))
    await communicator.send_json_to(media_frame("!!not base64!!"))
    await communicator.send_json_to({"event": "media", "streamSid": STREAM, "media": {}})
    await communicator.send_json_to({"event": "mark", "streamSid": STREAM})
    await communicator.send_json_to({"event": "dtmf", "streamSid": STREAM, "dtmf": {"digit": "12"}})
    await communicator.send_json_to({"event": "surprise", "streamSid": STREAM})
    await communicator.send_json_to(["a", "list"])
    await communicator.send_json_to(start_frame("again"))
    good = b64(b"\x7f" * 160)
    await communicator.send_json_to(media_frame(good))
    assert await communicator_session.wait_for("audio") == [good]
    assert communicator_session.values("mark") == []
    assert communicator_session.values("dtmf") == []
    assert await communicator.receive_nothing(timeout=0.05)
    # One warning per kind, not one per frame.
    not_json = [r for r in caplog.records if "not_json" in r.getMessage()]
    assert len(not_json) == 1
    kinds = {"media_before_start", "binary", "oversized", "bad_base64", "media_without_payload"}
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert all(kind in logged for kind in kinds | {"mark_without_name", "bad_dtmf", "unknown_event"})
    await communicator.disconnect()


async def _start_on(communicator, call) -> RecordingSession:
    token = await database_sync_to_async(issue_stream_token)(call_sid=call.call_sid, shop_id=call.shop_id)
    await communicator.send_json_to(start_frame(token))
    await asyncio.wait_for(_first_session(), TIMEOUT)
    session = RecordingSession.instances[0]
    await session.wait_for("start")
    return session


async def test_it_does_not_close_stale_database_connections_on_every_frame(call, monkeypatch):
    hops = []

    async def counting() -> None:
        hops.append(1)

    monkeypatch.setattr("channels.consumer.aclose_old_connections", counting)
    communicator, session = await started(call)
    before = len(hops)
    for n in range(50):
        await communicator.send_json_to(media_frame(b64(b"\xff" * 160), n))
    await session.wait_for("audio", 50)
    assert len(hops) == before
    await communicator.disconnect()


# ---------------------------------------------------------------------------------------------
# Session → Twilio (the Transport)
# ---------------------------------------------------------------------------------------------
async def test_it_sends_audio_as_20_ms_media_frames(call):
    communicator, session = await started(call)
    transport = session.transport
    assert transport.input_format == transport.output_format
    assert (transport.output_format.encoding, transport.output_format.sample_rate) == ("mulaw", 8000)
    audio = bytes(range(256)) + bytes(144)  # 400 bytes = 50 ms
    await transport.send_audio(audio)
    frames = [await communicator.receive_json_from(timeout=TIMEOUT) for _ in range(3)]
    assert [f["event"] for f in frames] == ["media"] * 3
    assert all(f["streamSid"] == STREAM for f in frames)
    chunks = [base64.b64decode(f["media"]["payload"]) for f in frames]
    assert [len(c) for c in chunks] == [160, 160, 80]
    assert b"".join(chunks) == audio
    await communicator.disconnect()


async def test_it_sends_realtime_deltas_as_is_then_marks_and_clears(call):
    communicator, session = await started(call)
    transport = session.transport
    delta = b64(b"\x55" * 800)
    await transport.send_audio_b64(delta)
    await transport.send_mark("resp-1")
    await transport.clear()
    await transport.send_event({"type": "transcript", "role": "assistant", "text": "hi"})
    assert await communicator.receive_json_from(timeout=TIMEOUT) == {
        "event": "media",
        "streamSid": STREAM,
        "media": {"payload": delta},
    }
    assert await communicator.receive_json_from(timeout=TIMEOUT) == {
        "event": "mark",
        "streamSid": STREAM,
        "mark": {"name": "resp-1"},
    }
    assert await communicator.receive_json_from(timeout=TIMEOUT) == {"event": "clear", "streamSid": STREAM}
    assert await communicator.receive_nothing(timeout=0.05)
    await communicator.disconnect()


async def test_it_closes_the_stream_when_the_session_ends_the_call(call):
    communicator, session = await started(call)
    await session.transport.close()
    assert await closed_with(communicator) == 1000
    await session.transport.send_audio(b"\xff" * 160)  # late audio after close goes nowhere
    await communicator.disconnect()
    assert await session.wait_for("stop") == ["failed"]  # idempotent in the real session


def test_it_names_session_states_as_call_control_states():
    assert call_state_for("idle", caller_heard=False) is CallState.GREETING
    assert call_state_for("speaking", caller_heard=False) is CallState.GREETING
    assert call_state_for("listening", caller_heard=False) is CallState.LISTENING
    assert call_state_for("processing", caller_heard=True) is CallState.PROCESSING
    assert call_state_for("SPEAKING", caller_heard=True) is CallState.RESPONDING
    assert call_state_for("transferring", caller_heard=True) is CallState.TRANSFERRING
    assert call_state_for("ended", caller_heard=True) is CallState.ENDING
    assert call_state_for("something new", caller_heard=True) is None


async def test_it_logs_the_call_control_path_from_session_state_events(call):
    communicator, session = await started(call)
    for state in ("speaking", "listening", "processing", "speaking", "listening", "transferring", "ended"):
        await session.transport.send_event({"type": "state", "state": state})
    consumer_states = session.transport._consumer.states
    assert consumer_states == [
        "GREETING",
        "LISTENING",
        "PROCESSING",
        "RESPONDING",
        "LISTENING",
        "TRANSFERRING",
        "ENDING",
    ]
    await communicator.disconnect()
