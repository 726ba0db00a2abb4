"""VoiceSession with the OpenAI Realtime engine, against the fake Realtime server (voice.testing.fake_realtime)
through the official SDK, and a FakeTransport standing in for Twilio (μ-law both ways) or a browser.

The fake's VAD is an energy detector on audio time: a test "speaks" by sending a loud tone and then
enough silence for the fake to hear the end of the turn. What the caller said and what the model answers
are scripted (`Turn`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import shutil
import time
import uuid

import pytest
from asgiref.sync import async_to_sync
from openai._utils import async_maybe_transform
from openai.types.realtime.realtime_client_event_param import RealtimeClientEventParam
from openai.types.realtime.response_create_event_with_references_param import ResponseCreateEventWithReferencesParam

from calls.models import CallLog, ToolCall
from voice import tools
from voice.audio import PCM16_16K, PCM16_24K, b64encode_audio, silence, split_frames
from voice.engines.realtime import CLOSE_SECONDS
from voice.session import BRIDGE, FILLER, SessionState, VoiceSession
from voice.testing.fake_realtime import FakeRealtime, Turn, tone
from voice.testing.transport import FakeTransport
from voice.warmup import load_voice_pipeline

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
]

PCMU = {"type": "audio/pcmu"}


@pytest.fixture
def openai(settings):
    load_voice_pipeline()  # as a server process does before its first call (the connect budget is 1.5 s)
    settings.OPENAI_API_KEY = "test-key"
    settings.OPENAI_REALTIME_MODEL = "gpt-realtime"
    settings.OPENAI_VOICE = "marin"
    return settings


def run(scenario):
    return async_to_sync(scenario)()


class Clock:
    """A monotonic clock the test moves: how long the far end has been playing our audio."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def open_session(shop, clock, fake, settings, *, transport=None, **options):
    settings.OPENAI_REALTIME_URL = fake.url
    transport = transport or FakeTransport()
    options.setdefault("call_sid", f"CA{uuid.uuid4().hex}")
    options.setdefault("channel", "phone")
    options.setdefault("caller_number", "+15555550123")
    session = VoiceSession(shop=shop, transport=transport, clock=clock, **options)
    transport.attach(session)
    return session, transport


async def speak(session: VoiceSession, speech_ms: int = 400, silence_ms: int = 700) -> None:
    """The caller talks (a tone the fake's VAD takes for speech), then is quiet long enough to end the turn."""
    audio = tone(speech_ms, PCMU, freq=300, amplitude=8000) + silence(silence_ms)
    for frame in split_frames(audio):
        await session.receive_audio_b64(b64encode_audio(frame))


async def greeted(session: VoiceSession, transport: FakeTransport) -> None:
    await session.start()
    await transport.wait_for(lambda: bool(transport.transcripts("assistant")))
    await transport.wait_for(lambda: session.state == SessionState.LISTENING)


def assert_in_wire_form(events: list[dict]) -> None:
    """The engine sends its events as JSON through the SDK's `send_raw`, skipping the transform its
    `send()` would run: that transform must have nothing to change in them."""
    event_type = RealtimeClientEventParam | ResponseCreateEventWithReferencesParam  # what send() transforms to
    for event in events:
        assert async_to_sync(async_maybe_transform)(event, event_type) == event, event["type"]


def deltas(fake: FakeRealtime) -> bytes:
    return b"".join(base64.b64decode(e["delta"]) for e in fake.connection.sent_events("response.output_audio.delta"))


def test_it_answers_a_status_question_with_a_tool_and_passes_mulaw_through(shop, orders, clock, openai):
    script = [
        Turn(
            transcript="is my civic ready",
            tool_call=("get_work_order_status", {"vehicle": "civic"}),
            reply=lambda output: output["speak"],
        )
    ]

    async def scenario():
        async with FakeRealtime(script) as fake:
            session, transport = open_session(shop, clock, fake, openai)
            await greeted(session, transport)
            await speak(session)
            await transport.wait_for(lambda: transport.events_of("metrics"))
            await transport.wait_for(lambda: session.state == SessionState.LISTENING)
            appended = fake.connection.events("input_audio_buffer.append")
            await session.stop()
            await fake.wait_until(lambda: fake.connection.closed.is_set())
            return session, transport, fake, appended

    session, transport, fake, appended = run(scenario)
    conn = fake.connection
    sent = {e["type"] for e in conn.received}
    assert {"session.update", "response.create", "conversation.item.create"} <= sent
    assert_in_wire_form([e for e in conn.received if e["type"] != "input_audio_buffer.append"])

    config = conn.session
    assert config["audio"]["input"]["format"] == PCMU
    assert config["audio"]["output"] == {"format": PCMU, "voice": "marin", "speed": 1.0}
    assert config["audio"]["input"]["transcription"]["model"] == "gpt-4o-mini-transcribe"
    assert config["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert {t["name"] for t in config["tools"]} == set(tools.REGISTRY.names)
    assert "Elm Street Auto" in config["instructions"]

    # μ-law passes through untouched both ways.
    assert bytes(transport.audio) == deltas(fake)
    first = base64.b64decode(appended[0]["audio"])
    assert len(first) == 160 and set(appended[0]) == {"type", "audio"}

    output = conn.function_outputs[next(iter(conn.function_outputs))]
    assert output["ok"] is True and "ready for pickup" in output["speak"]
    said = transport.transcripts("assistant")
    assert said[0] == shop.spoken_greeting
    assert "ready for pickup" in said[1]
    assert transport.transcripts("caller") == ["is my civic ready"]
    metrics = transport.events_of("metrics")[0]
    assert metrics["engine"] == "openai" and metrics["response_ms"] > 0 and metrics["tts_ms"] is None

    call = CallLog.objects.get(call_sid=session.call_sid)
    assert call.engine == "openai" and call.fallback_reason == ""
    assert list(call.turns.values_list("role", flat=True)) == ["assistant", "caller", "assistant"]
    assert call.turns.last().text == said[1]
    assert list(call.tool_calls.values_list("name", "ok")) == [("get_work_order_status", True)]
    assert call.intent == "CHECK_STATUS"
    assert call.first_response_ms is not None
    assert call.outcome == CallLog.Outcome.CALLER_HUNG_UP


@pytest.mark.parametrize(("played_seconds", "heard_ms"), [(0.15, 150), (0.5, 300)])
def test_barge_in_clears_the_transport_truncates_at_what_was_heard_and_cancels(
    shop, clock, openai, played_seconds, heard_ms
):
    """The caller talks over a reply that has sent 300 ms of audio (then stalls): the far end is cleared,
    the item truncated where the caller stopped hearing it — never past what was sent, even when the
    clock says more could have played (0.5 s; its marks are not echoed yet) — and the response cancelled."""
    playback = Clock()
    script = [Turn(transcript="what services do you offer", reply="We do oil changes, brakes and more.", stall_after=3)]

    async def scenario():
        async with FakeRealtime(script) as fake:
            transport = FakeTransport(auto_mark=False)
            session, transport = open_session(shop, clock, fake, openai, transport=transport, monotonic=playback)
            await session.start()
            await transport.wait_for(lambda: transport.transcripts("assistant"))  # greeting sent
            await transport.play()
            await speak(session)
            await transport.wait_for(lambda: len(transport.pending_marks) == 3)  # the reply's first 300 ms
            reply_item = fake.connection.sent_events("response.output_audio.delta")[-1]["item_id"]
            assert session.state == SessionState.SPEAKING
            playback.now += played_seconds
            await speak(session, silence_ms=0)
            await fake.wait_until(lambda: fake.connection.events("conversation.item.truncate"))
            await fake.wait_until(lambda: fake.connection.events("response.cancel"))
            state = session.state
            audio_after_clear = len(transport.audio)
            await session.stop()
            return fake, transport, reply_item, state, audio_after_clear

    fake, transport, reply_item, state, audio_after_clear = run(scenario)
    conn = fake.connection
    assert transport.clears == 1
    truncate = conn.events("conversation.item.truncate")[0]
    assert truncate == {
        "type": "conversation.item.truncate",
        "item_id": reply_item,
        "content_index": 0,
        "audio_end_ms": heard_ms,
    }
    assert conn.sent_events("conversation.item.truncated")  # the fake accepted it: within the item's audio
    assert_in_wire_form(conn.events("conversation.item.truncate") + conn.events("response.cancel"))
    assert not [e for e in conn.sent_events("error") if e["error"]["param"] == "audio_end_ms"]
    assert state == SessionState.LISTENING
    assert len(transport.audio) == audio_after_clear


def test_a_failing_tool_is_told_to_the_model_and_the_call_goes_on(shop, clock, openai, monkeypatch):
    async def broken(ctx, args):
        raise RuntimeError("the hours table is on fire")

    original = tools.REGISTRY.get("get_business_hours")
    monkeypatch.setitem(
        tools.REGISTRY._tools,
        "get_business_hours",
        tools.Tool(original.name, original.description, original.parameters, broken),
    )
    script = [
        Turn(
            transcript="when are you open",
            tool_call=("get_business_hours", {}),
            reply="Sorry, I can't see our hours right now.",
        )
    ]

    async def scenario():
        async with FakeRealtime(script) as fake:
            session, transport = open_session(shop, clock, fake, openai)
            await greeted(session, transport)
            await speak(session)
            await transport.wait_for(lambda: len(transport.transcripts("assistant")) == 2)
            await transport.wait_for(lambda: session.state == SessionState.LISTENING)
            ended = session.ended.is_set()
            await session.stop()
            return session, fake, transport, ended

    session, fake, transport, ended = run(scenario)
    assert not ended
    assert list(fake.connection.function_outputs.values()) == [{"ok": False, "speak": "", "error": "the tool failed"}]
    assert transport.transcripts("assistant")[1] == "Sorry, I can't see our hours right now."
    call = CallLog.objects.get(call_sid=session.call_sid)
    assert list(call.tool_calls.values_list("name", "ok")) == [("get_business_hours", False)]
    assert call.engine == "openai"


def test_a_dropped_socket_mid_reply_hands_the_call_to_the_offline_engine(shop, clock, openai):
    script = [Turn(transcript="what time do you close today", reply="We close at five thirty.", drop_after=2)]

    async def scenario():
        async with FakeRealtime(script) as fake:
            session, transport = open_session(shop, clock, fake, openai)
            await greeted(session, transport)
            await speak(session)
            await transport.wait_for(lambda: any("5:30 PM" in t for t in transport.transcripts("assistant")))
            engine = session.engine_name
            await session.receive_text("where are you located")
            await transport.wait_for(lambda: any("12 Elm Street" in t for t in transport.transcripts("assistant")))
            ended = session.ended.is_set()
            await fake.wait_until(lambda: fake.connection.closed.is_set())
            await session.stop()
            return session, transport, engine, ended

    session, transport, engine, ended = run(scenario)
    assert engine == "local" and not ended
    said = transport.transcripts("assistant")
    assert BRIDGE in said  # then the offline engine answers the question the caller asked
    assert said.index(BRIDGE) < next(i for i, t in enumerate(said) if "5:30 PM" in t)
    assert transport.events_of("engine")[-1]["engine"] == "local"
    call = CallLog.objects.get(call_sid=session.call_sid)
    assert call.engine == "local"
    assert call.fallback_reason.startswith("openai realtime")
    texts = list(call.turns.values_list("text", flat=True))
    assert BRIDGE in texts and any("5:30 PM" in t for t in texts) and any("12 Elm Street" in t for t in texts)


def test_a_fatal_error_event_falls_back_but_a_harmless_one_does_not(shop, clock, openai):
    async def scenario():
        async with FakeRealtime() as fake:
            session, transport = open_session(shop, clock, fake, openai)
            await greeted(session, transport)
            await fake.connection.send_error("Unknown parameter: 'foo'.", code="unknown_parameter", param="foo")
            await fake.connection.send_error("Cancellation failed", code="response_cancel_not_active")
            harmless_engine = session.engine_name
            await fake.connection.send_error("The server had an error.", type="server_error", code="server_error")
            await transport.wait_for(lambda: session.engine_name == "local")
            await transport.wait_for(lambda: any(BRIDGE in t for t in transport.transcripts("assistant")))
            await fake.wait_until(lambda: fake.connection.closed.is_set())
            await session.stop()
            return session, transport, harmless_engine

    session, transport, harmless_engine = run(scenario)
    assert harmless_engine == "openai"
    assert transport.transcripts("assistant")[-1].startswith(BRIDGE)  # + asks the caller to say it again
    call = CallLog.objects.get(call_sid=session.call_sid)
    assert "server_error" in call.fallback_reason
    assert call.engine == "local"


def test_no_response_in_time_fills_the_silence_then_falls_back(shop, clock, openai):
    script = [Turn(transcript="where are you located", reply="never said", delay=math.inf)]

    async def scenario():
        async with FakeRealtime(script) as fake:
            session, transport = open_session(shop, clock, fake, openai, response_timeout=0.4, filler_after=0.05)
            await greeted(session, transport)
            await speak(session)
            await transport.wait_for(lambda: any("12 Elm Street" in t for t in transport.transcripts("assistant")))
            await session.stop()
            return session, transport

    session, transport = run(scenario)
    said = transport.transcripts("assistant")
    assert said[1:3] == [FILLER, BRIDGE]
    # The offline answer may get its own filler first: this test's filler_after is 50 ms.
    assert "12 Elm Street" in said[-1] and set(said[3:-1]) <= {FILLER}
    call = CallLog.objects.get(call_sid=session.call_sid)
    assert call.fallback_reason == "no response from OpenAI Realtime within 0.4 s"


def test_a_caller_hanging_up_mid_answer_closes_the_openai_socket_cleanly_and_at_once(shop, clock, openai):
    """The greeting's audio is still streaming in when the call ends: the close handshake must not wait
    behind unread audio (it did for 2 s, and the server saw the socket close only ~20 s later)."""

    async def scenario():
        async with FakeRealtime(ms_per_char=200) as fake:  # a long greeting: ~100 audio deltas
            session, transport = open_session(shop, clock, fake, openai)
            await session.start()
            await transport.wait_for(lambda: transport.audio_ms > 0)
            started = time.perf_counter()
            await session.stop()
            stop_ms = (time.perf_counter() - started) * 1000
            await asyncio.wait_for(fake.connection.closed.wait(), 10)
            return stop_ms, (time.perf_counter() - started) * 1000, fake.connection.ws.close_code

    stop_ms, server_saw_close_ms, close_code = run(scenario)
    print(f"stop {stop_ms:.0f} ms, server saw the close after {server_saw_close_ms:.0f} ms")
    assert stop_ms < CLOSE_SECONDS * 1000  # not the abort after the handshake's limit
    assert server_saw_close_ms < CLOSE_SECONDS * 1000
    assert close_code == 1000  # a clean close, not an aborted socket


def test_caller_audio_waits_while_the_openai_socket_pushes_back_and_none_of_it_is_lost(shop, clock, openai):
    """Appends skip websockets' send() while the socket takes data at once; when the server stops
    reading they must still stop at the socket's high-water mark (not pile up in memory) and go on,
    in order, once it reads again."""

    def second(n: int) -> str:  # one second of quiet μ-law, numbered in its first bytes
        return b64encode_audio(bytes(0xF0 | (n >> shift) & 0xF for shift in range(28, -1, -4)) + b"\xff" * 7992)

    async def scenario():
        async with FakeRealtime() as fake:
            session, transport = open_session(shop, clock, fake, openai)
            await greeted(session, transport)
            conn = fake.connection
            before = len(conn.events("input_audio_buffer.append"))
            ws = session._engine._ws
            conn.reading.clear()
            sent: list[str] = []
            while not ws.paused:  # the kernel's buffers fill first, then the socket's own
                sent.append(second(len(sent)))
                await session.receive_audio_b64(sent[-1])
            buffered, high = ws.transport.get_write_buffer_size(), ws.transport.get_write_buffer_limits()[1]
            sent.append(second(len(sent)))
            waiting = asyncio.create_task(session.receive_audio_b64(sent[-1]))
            for _ in range(20):  # a write the socket took would be done within a step or two
                await asyncio.sleep(0)
            waited = not waiting.done()
            conn.reading.set()
            await waiting
            await fake.wait_until(lambda: len(conn.events("input_audio_buffer.append")) == before + len(sent), 20)
            arrived = [e["audio"] for e in conn.events("input_audio_buffer.append")[before:]]
            await session.stop()
            return waited, buffered, high, sent, arrived

    waited, buffered, high, sent, arrived = run(scenario)
    assert waited  # the caller's audio waited for the socket
    assert buffered <= high + len(sent[0]) + 16  # the high-water mark and one frame, not everything sent
    assert arrived == sent


def test_it_stores_token_usage_and_closes_the_openai_socket_when_the_call_ends(shop, clock, openai):
    script = [Turn(transcript="do you do alignments", reply="Yes, we do wheel alignments.")]

    async def scenario():
        async with FakeRealtime(script) as fake:
            session, transport = open_session(shop, clock, fake, openai)
            await greeted(session, transport)
            await speak(session)
            await transport.wait_for(lambda: len(transport.transcripts("assistant")) == 2)
            await transport.wait_for(lambda: session.state == SessionState.LISTENING)
            await session.stop()
            await fake.wait_until(lambda: fake.connection.closed.is_set())
            return session, fake

    session, fake = run(scenario)
    usages = [e["response"]["usage"] for e in fake.connection.sent_events("response.done")]
    call = CallLog.objects.get(call_sid=session.call_sid)
    assert call.usage["responses"] == len(usages) == 2
    assert call.usage["total_tokens"] == sum(u["total_tokens"] for u in usages)
    assert call.usage["output_token_details"]["audio_tokens"] == sum(
        u["output_token_details"]["audio_tokens"] for u in usages
    )
    assert call.usage["model"] == "gpt-realtime"
    assert call.usage["transcription_seconds"] == 1


def test_a_transfer_tool_call_says_the_line_then_closes_with_outcome_transferred(shop, clock, openai):
    script = [Turn(transcript="let me talk to a person", tool_call=("transfer_to_human", {"reason": "asked"}))]

    async def scenario():
        async with FakeRealtime(script) as fake:
            session, transport = open_session(shop, clock, fake, openai)
            await greeted(session, transport)
            await speak(session)
            assert await session.wait_ended(timeout=10)
            await fake.wait_until(lambda: fake.connection.closed.is_set())
            return session, transport

    session, transport = run(scenario)
    assert "TRANSFERRING" in [s.upper() for s in transport.states()]
    assert transport.closed.is_set()
    assert transport.log.index(("close",)) > max(i for i, e in enumerate(transport.log) if e[0] == "mark")
    assert transport.transcripts("assistant")[-1].startswith("Sure, let me connect you")
    call = CallLog.objects.get(call_sid=session.call_sid)
    assert call.outcome == CallLog.Outcome.TRANSFERRED
    assert call.intent == "TRANSFER_HUMAN"
    assert ToolCall.objects.filter(call=call, name="transfer_to_human", ok=True).exists()


def test_an_unreachable_realtime_server_means_the_offline_engine_from_the_start(shop, clock, openai):
    async def scenario():
        async with FakeRealtime() as fake:
            url = fake.url
        session, transport = open_session(shop, clock, fake, openai, connect_timeout=2)
        openai.OPENAI_REALTIME_URL = url  # nobody listens there any more
        await greeted(session, transport)
        await session.stop()
        return session, transport

    session, transport = run(scenario)
    assert session.engine_name == "local"
    assert transport.transcripts("assistant")[0] == shop.spoken_greeting
    call = CallLog.objects.get(call_sid=session.call_sid)
    assert call.engine == "local" and call.fallback_reason.startswith("openai realtime unavailable")


def test_a_browser_gets_pcm_converted_to_and_from_24_khz(shop, clock, openai):
    script = [Turn(transcript="hello", reply="Hi there.")]

    async def scenario():
        async with FakeRealtime(script) as fake:
            transport = FakeTransport(name="browser", input_format=PCM16_16K, output_format=PCM16_16K)
            session, transport = open_session(shop, clock, fake, openai, transport=transport, channel="browser")
            await greeted(session, transport)
            loud = tone(400, {"type": "audio/pcm", "rate": 24000}, freq=300, amplitude=8000)
            from voice.audio import convert

            caller = convert(loud, PCM16_24K, PCM16_16K) + silence(700, PCM16_16K)
            for frame in split_frames(caller, PCM16_16K.frame_bytes, pad=b"\x00"):
                await session.receive_audio(frame)
            await transport.wait_for(lambda: len(transport.transcripts("assistant")) == 2)
            received = fake.connection.audio_bytes_received
            await session.stop()
            return fake, transport, received, len(caller)

    fake, transport, received, sent = run(scenario)
    assert fake.connection.session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert abs(received - sent * 3 // 2) < 200  # 16 kHz in, 24 kHz to OpenAI
    assert abs(len(transport.audio) - len(deltas(fake)) * 2 // 3) < 200  # 24 kHz from OpenAI, 16 kHz out
    assert json.dumps(transport.events)  # events are JSON for the browser


def test_the_record_keeps_the_callers_words_before_an_answer_that_beat_their_transcription(shop, clock, openai):
    script = [Turn(transcript=None, reply="We close at five thirty today.")]

    async def scenario():
        async with FakeRealtime(script) as fake:
            session, transport = open_session(shop, clock, fake, openai)
            await greeted(session, transport)
            await speak(session)
            await transport.wait_for(lambda: len(transport.transcripts("assistant")) == 2)
            item_id = fake.connection.sent_events("input_audio_buffer.committed")[-1]["item_id"]
            await fake.connection.send(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item_id,
                    "content_index": 0,
                    "transcript": "what time do you close",
                }
            )
            await transport.wait_for(lambda: bool(transport.transcripts("caller")))
            await session.stop()
            return session

    session = run(scenario)
    call = CallLog.objects.get(call_sid=session.call_sid)
    assert list(call.turns.values_list("role", "text")) == [
        ("assistant", shop.spoken_greeting),
        ("caller", "what time do you close"),
        ("assistant", "We close at five thirty today."),
    ]


def test_a_slow_tool_gets_a_filler_in_the_models_voice_kept_out_of_the_record(shop, clock, openai, slow_location):
    release = slow_location
    script = [Turn(transcript="where are you", tool_call=("get_location", {}), reply=lambda out: out["speak"])]

    async def scenario():
        async with FakeRealtime(script) as fake:
            session, transport = open_session(shop, clock, fake, openai, filler_after=0.05)
            await greeted(session, transport)
            await speak(session)
            await transport.wait_for(lambda: FILLER in transport.transcripts("assistant"))
            release.set()
            await transport.wait_for(lambda: any("12 Elm Street" in t for t in transport.transcripts("assistant")))
            await transport.wait_for(lambda: bool(transport.events_of("metrics")))
            await session.stop()
            return session, transport, fake

    session, transport, fake = run(scenario)
    assert transport.events_of("metrics")[0]["filler"] is True
    assert transport.events_of("metrics")[0]["tool_ms"] > 0
    instructions = [e.get("response", {}).get("instructions", "") for e in fake.connection.events("response.create")]
    assert any(FILLER in i for i in instructions)  # said by the model, in its voice
    call = CallLog.objects.get(call_sid=session.call_sid)
    texts = list(call.turns.values_list("text", flat=True))
    assert FILLER not in texts and any("12 Elm Street" in t for t in texts)


def test_it_records_the_callers_words_once_when_the_offline_engine_answers_them_after_a_fallback(shop, clock, openai):
    script = [Turn(reply="We are at twelve Elm Street.", drop_after=0)]

    async def scenario():
        async with FakeRealtime(script) as fake:
            session, transport = open_session(shop, clock, fake, openai)
            await greeted(session, transport)
            await session.receive_text("where are you located")
            await transport.wait_for(lambda: any("12 Elm Street" in t for t in transport.transcripts("assistant")))
            await session.stop()
            return session

    session = run(scenario)
    assert session.engine_name == "local"
    texts = list(CallLog.objects.get(call_sid=session.call_sid).turns.values_list("text", flat=True))
    assert texts.count("where are you located") == 1
    assert any("12 Elm Street" in t for t in texts)
