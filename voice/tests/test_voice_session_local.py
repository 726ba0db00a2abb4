"""VoiceSession with the offline engine, through a FakeTransport: espeak-ng caller audio in, our audio,
marks, clears and events out, the CallLog written as the call goes.

Synthetic speech is recognised unreliably (shared/protocols.md D), so spoken turns are asserted
coarsely (a caller turn and an answer were recorded); exact content goes through `receive_text`.
Timeouts are the session's constructor parameters, set to milliseconds; tests wait on the transport's
events, never sleep.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid

import pytest
from asgiref.sync import async_to_sync

from calls.models import CallLog, ToolCall
from voice.asr import Recognizer, ShopVocabulary, Utterance, UtteranceDetector, build_domain_model
from voice.audio import MULAW_8K, PCM16_16K, PCM16_24K, silence, split_frames
from voice.conversation import TIME_UP, ConversationService
from voice.session import FILLER, SILENCE_GOODBYE, STILL_THERE, SessionState, VoiceSession
from voice.testing.speech import caller_audio, caller_frames
from voice.testing.transport import FakeTransport

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
]


def run(scenario):
    """Run an async scenario from this sync test: the ORM calls it makes (through sync_to_async) come
    back to this thread, inside the test's transaction."""
    return async_to_sync(scenario)()


def open_session(
    shop, clock, *, transport: FakeTransport | None = None, **options
) -> tuple[VoiceSession, FakeTransport]:
    transport = transport or FakeTransport()
    options.setdefault("call_sid", f"CA{uuid.uuid4().hex}")
    options.setdefault("channel", "phone")
    options.setdefault("caller_number", "+15555550188")
    session = VoiceSession(shop=shop, transport=transport, engine="local", clock=clock, **options)
    transport.attach(session)
    return session, transport


async def feed(session: VoiceSession, frames: list[bytes]) -> None:
    for frame in frames:
        await session.receive_audio(frame)


def turns(call: CallLog) -> list[tuple[str, str]]:
    return list(call.turns.values_list("role", "text"))


def test_it_greets_first_and_answers_typed_text(shop, clock):
    async def scenario():
        session, transport = open_session(shop, clock)
        await session.start()
        await transport.wait_for(lambda: transport.marks_sent)
        await transport.wait_for(lambda: session.state == SessionState.LISTENING)
        await session.receive_text("What time do you close today?")
        await transport.wait_for(lambda: transport.events_of("metrics"))
        await transport.wait_for(lambda: session.state == SessionState.LISTENING)
        await session.stop()
        return session, transport

    session, transport = run(scenario)

    # The greeting is the first thing sent, before the caller said anything.
    assert [entry for entry in transport.log if entry[0] != "event"][0][0] == "audio"
    assert transport.events.index({"type": "state", "state": "speaking"}) < transport.events.index(
        {"type": "transcript", "role": "caller", "text": "What time do you close today?"}
    )
    assert transport.transcripts("assistant")[0] == shop.spoken_greeting
    assert "automated assistant" in transport.transcripts("assistant")[0]
    assert "5:30 PM" in transport.transcripts("assistant")[1]
    assert transport.states()[:2] == ["speaking", "listening"]
    assert transport.states()[-1] == "ended"
    metrics = transport.events_of("metrics")[0]
    assert metrics["engine"] == "local" and metrics["response_ms"] > 0 and metrics["tts_ms"] is not None
    assert not transport.closed.is_set()  # stop(): the far end is gone, nothing to close

    call = CallLog.objects.get(call_sid=session.call_sid)
    assert turns(call) == [
        ("assistant", shop.spoken_greeting),
        ("caller", "What time do you close today?"),
        ("assistant", transport.transcripts("assistant")[1]),
    ]
    assert call.engine == "local"
    assert call.outcome == CallLog.Outcome.CALLER_HUNG_UP
    assert call.ended_at is not None
    assert call.first_response_ms == round(session.turns[0].response_ms)
    assert call.intent == "GET_HOURS"


def test_it_answers_a_spoken_question(shop, clock):
    frames = caller_frames("what time do you close today", lead_ms=300, trail_ms=900)

    async def scenario():
        session, transport = open_session(shop, clock)
        await session.start()
        await transport.wait_for(lambda: session.state == SessionState.LISTENING)
        greeting_bytes = len(transport.audio)
        await feed(session, frames)
        await transport.wait_for(lambda: transport.events_of("metrics"))
        await session.stop()
        return session, transport, greeting_bytes

    session, transport, greeting_bytes = run(scenario)

    assert len(transport.audio) > greeting_bytes  # the answer was spoken
    assert len(transport.transcripts("caller")) == 1
    assert len(transport.transcripts("assistant")) == 2
    metrics = transport.events_of("metrics")[0]
    assert metrics["source"] == "speech" and metrics["asr_ms"] > 0 and metrics["response_ms"] > 0
    assert metrics["speech_ms"] > 500 and metrics["asr_decode_ms"] > 0
    call = CallLog.objects.get(call_sid=session.call_sid)
    roles = [role for role, _ in turns(call)]
    assert roles == ["assistant", "caller", "assistant"]
    assert call.first_response_ms is not None


def test_it_stops_the_greeting_when_the_caller_talks_over_it(shop, clock):
    speech = list(split_frames(caller_audio("hello is anybody there", lead_ms=100)))

    async def scenario():
        session, transport = open_session(shop, clock, transport=FakeTransport(auto_mark=False))
        await session.start()
        await transport.wait_for(lambda: len(transport.marks_sent) >= 2)  # the greeting is queued, unplayed
        assert session.state == SessionState.SPEAKING
        await feed(session, speech)  # the caller is still talking: no end of utterance yet
        await transport.wait_for(lambda: transport.clears == 1)
        audio_at_clear = len(transport.audio)
        state = session.state
        await session.stop()
        return transport, audio_at_clear, state

    transport, audio_at_clear, state = run(scenario)

    assert state == SessionState.LISTENING
    assert len(transport.audio) == audio_at_clear  # nothing more was said over the caller
    assert transport.log.index(("clear",)) > transport.log.index(("mark", "m1"))


def test_it_transfers_when_the_caller_presses_0_once_the_line_has_played(shop, clock):
    async def scenario():
        session, transport = open_session(shop, clock, transport=FakeTransport(auto_mark=False))
        await session.start()
        await transport.wait_for(lambda: transport.marks_sent)
        await session.dtmf("0")
        await transport.wait_for(lambda: session.state == SessionState.TRANSFERRING)
        await transport.wait_for(lambda: any("connect you" in t for t in transport.transcripts("assistant")))
        await transport.wait_for(lambda: transport.pending_marks)
        closed_before_played = transport.closed.is_set()
        await transport.play()
        await session.wait_ended(timeout=10)
        return session, transport, closed_before_played

    session, transport, closed_before_played = run(scenario)

    assert not closed_before_played
    assert transport.closed.is_set()
    assert transport.clears == 1  # the greeting was cut for the transfer line
    assert transport.log[-2:] == [("event", "state"), ("close",)]
    call = CallLog.objects.get(call_sid=session.call_sid)
    assert call.outcome == CallLog.Outcome.TRANSFERRED
    assert call.intent == "TRANSFER_HUMAN"
    assert ToolCall.objects.filter(call=call, name="transfer_to_human", ok=True).exists()
    assert session.state == SessionState.ENDED


def test_it_does_not_hang_up_when_there_is_nobody_to_transfer_to(shop, clock):
    shop.transfer_number = ""
    shop.save(update_fields=["transfer_number"])

    async def scenario():
        session, transport = open_session(shop, clock)
        await session.start()
        await session.dtmf("0")
        await transport.wait_for(lambda: any("can't transfer" in t for t in transport.transcripts("assistant")))
        await session.stop()
        return transport

    transport = run(scenario)
    assert not transport.closed.is_set()


def test_it_asks_whether_the_caller_is_still_there_then_says_goodbye(shop, clock):
    async def scenario():
        session, transport = open_session(shop, clock, silence_timeout=0.05, silence_reprompts=2)
        await session.start()
        await session.wait_ended(timeout=20)
        return session, transport

    session, transport = run(scenario)

    said = transport.transcripts("assistant")
    assert said[1:] == [STILL_THERE, STILL_THERE, SILENCE_GOODBYE]
    assert transport.closed.is_set()
    call = CallLog.objects.get(call_sid=session.call_sid)
    assert call.outcome == CallLog.Outcome.ABANDONED
    assert [text for _, text in turns(call)][-1] == SILENCE_GOODBYE


def test_a_caller_who_answers_the_reprompt_is_not_hung_up_on(shop, clock):
    async def scenario():
        session, transport = open_session(shop, clock, silence_timeout=0.05, silence_reprompts=1)
        await session.start()
        await transport.wait_for(lambda: STILL_THERE in transport.transcripts("assistant"))
        await session.receive_text("where are you located")
        await transport.wait_for(lambda: any("12 Elm Street" in t for t in transport.transcripts("assistant")[2:]))
        ended = session.ended.is_set()
        await session.stop()
        return ended

    assert run(scenario) is False


def test_it_says_goodbye_at_the_call_limit_even_while_the_caller_talks(shop, clock):
    speech = list(split_frames(caller_audio("well let me tell you all about my car and the noise it makes")))

    async def scenario():
        session, transport = open_session(shop, clock, max_call_seconds=0.3)
        await session.start()
        await feed(session, speech)  # mid-sentence: no end of utterance
        await session.wait_ended(timeout=20)
        return session, transport

    session, transport = run(scenario)

    assert transport.transcripts("assistant")[-1] == TIME_UP
    assert transport.closed.is_set()
    call = CallLog.objects.get(call_sid=session.call_sid)
    assert call.outcome == CallLog.Outcome.RESOLVED
    assert [text for _, text in turns(call)][-1] == TIME_UP


def test_it_says_a_filler_when_the_answer_is_slow(shop, clock, monkeypatch):
    release = asyncio.Event()
    original = ConversationService.handle_turn

    async def slow(self, text, **kwargs):
        await release.wait()
        return await original(self, text, **kwargs)

    monkeypatch.setattr(ConversationService, "handle_turn", slow)

    async def scenario():
        session, transport = open_session(shop, clock, filler_after=0.02)
        await session.start()
        await transport.wait_for(lambda: session.state == SessionState.LISTENING)
        await session.receive_text("where are you located")
        await transport.wait_for(lambda: FILLER in transport.transcripts("assistant"))
        release.set()
        await transport.wait_for(lambda: transport.events_of("metrics"))
        await session.stop()
        return session, transport

    session, transport = run(scenario)
    said = transport.transcripts("assistant")
    assert said.count(FILLER) == 1
    assert "12 Elm Street" in said[-1]
    assert transport.events_of("metrics")[0]["filler"] is True
    call = CallLog.objects.get(call_sid=session.call_sid)
    assert FILLER not in [text for _, text in turns(call)]  # a filler is not part of the conversation


def test_a_crash_inside_the_engine_leaves_a_failed_call_and_closes_the_transport(shop, clock, monkeypatch):
    async def broken(self, text, **kwargs):
        raise RuntimeError("the brain fell over")

    monkeypatch.setattr(ConversationService, "handle_turn", broken)

    async def scenario():
        session, transport = open_session(shop, clock)
        await session.start()
        await session.receive_text("hello")
        await session.wait_ended(timeout=10)
        return session, transport

    session, transport = run(scenario)
    assert transport.closed.is_set()
    assert session.state == SessionState.ENDED
    call = CallLog.objects.get(call_sid=session.call_sid)
    assert call.outcome == CallLog.Outcome.FAILED
    assert "the brain fell over" in call.error
    assert call.ended_at is not None


def test_it_takes_over_the_call_log_the_twilio_webhook_opened(shop, orders, clock):
    from telephony.services import phone_call_start

    phone_call_start(shop=shop, call_sid="CA-webhook", caller_number="+15555550123")

    async def scenario():
        session, transport = open_session(shop, clock, call_sid="CA-webhook", caller_number="+15555550123")
        await session.start()
        await session.receive_text("Is my Civic ready?")
        await transport.wait_for(lambda: transport.events_of("metrics"))
        await session.stop()
        return transport

    transport = run(scenario)
    assert "ready for pickup" in transport.transcripts("assistant")[-1]
    call = CallLog.objects.get(call_sid="CA-webhook")
    assert call.engine == "local"
    assert call.turns.count() == 3
    assert call.state["v"] == 1


def test_it_speaks_pcm16_to_a_browser(shop, clock):
    async def scenario():
        transport = FakeTransport(name="browser", input_format=PCM16_16K, output_format=PCM16_24K)
        session, transport = open_session(shop, clock, transport=transport, channel="browser", caller_number="")
        await session.start()
        await transport.wait_for(lambda: session.state == SessionState.LISTENING)
        await feed(session, [silence(20, PCM16_16K)] * 10)
        await session.stop()
        return transport

    transport = run(scenario)
    assert len(transport.audio) % 2 == 0
    seconds = len(transport.audio) / PCM16_24K.bytes_per_second
    assert 3 < seconds < 15  # the greeting, at 24 kHz


def test_recognising_while_the_caller_talks_gives_the_words_of_decoding_afterwards(tmp_path):
    model = build_domain_model(ShopVocabulary(shop_name="Elm Street Auto", services=("Oil change",)), tmp_path)
    pieces: list[bytes] = []
    detector = UtteranceDetector(input_format=MULAW_8K, on_speech=pieces.append)
    events = detector.feed(caller_audio("what time do you close today", lead_ms=300, trail_ms=900))
    (utterance,) = [e for e in events if isinstance(e, Utterance)]
    assert pieces[-1] == b"" and b"".join(pieces) == utterance.pcm

    streaming = Recognizer(model)
    streaming.begin()
    for piece in pieces[:-1]:
        streaming.feed(piece)
    heard = streaming.finish()

    assert heard.text and heard.text == Recognizer(model).decode(utterance.pcm).text
    assert heard.audio_seconds == pytest.approx(utterance.duration)


def test_pressing_0_while_an_answer_is_being_worked_out_puts_the_caller_through_without_it(shop, clock, monkeypatch):
    release = asyncio.Event()
    original = ConversationService.handle_turn

    async def slow(self, text, **kwargs):
        await release.wait()
        return await original(self, text, **kwargs)

    monkeypatch.setattr(ConversationService, "handle_turn", slow)

    async def scenario():
        session, transport = open_session(shop, clock)
        await session.start()
        await transport.wait_for(lambda: session.state == SessionState.LISTENING)
        await session.receive_text("where are you located")
        await session.dtmf("0")
        release.set()
        await session.wait_ended(timeout=10)
        return session, transport

    session, transport = run(scenario)
    said = transport.transcripts("assistant")
    assert said[-1].startswith("Sure, let me connect you")
    assert not any("12 Elm Street" in t for t in said)
    assert CallLog.objects.get(call_sid=session.call_sid).outcome == CallLog.Outcome.TRANSFERRED


def test_the_greeting_does_not_wait_for_the_shops_language_model(shop, clock, monkeypatch):
    import threading

    from voice.engines import local_voice

    built = threading.Event()
    real_build = local_voice.build_domain_model

    def slow_build(vocabulary):
        built.wait(10)  # in a worker thread: held until the greeting is out
        return real_build(vocabulary)

    monkeypatch.setattr(local_voice, "build_domain_model", slow_build)
    frames = caller_frames("what time do you close today", lead_ms=300, trail_ms=900)

    async def scenario():
        session, transport = open_session(shop, clock)
        await session.start()
        await transport.wait_for(lambda: session.state == SessionState.LISTENING)  # greeting sent and played
        await feed(session, frames)  # the caller talks before the model exists: recognition waits for it
        greeted_before_model = not built.is_set()
        built.set()
        await transport.wait_for(lambda: bool(transport.events_of("metrics")))
        await session.stop()
        return transport, greeted_before_model

    transport, greeted_before_model = run(scenario)
    assert greeted_before_model
    assert transport.transcripts("assistant")[0] == shop.spoken_greeting
    assert len(transport.transcripts("caller")) == 1  # and the caller's words were still recognised


def test_it_tells_the_far_end_the_call_ended_before_closing(shop, clock):
    async def scenario():
        session, transport = open_session(shop, clock)
        await session.start()
        await transport.wait_for(lambda: session.state == SessionState.LISTENING)
        await session.receive_text("That's all, thanks, goodbye")
        await session.wait_ended(timeout=10)
        return transport

    transport = run(scenario)
    assert transport.states()[-1] == "ended"
    assert transport.log[-2:] == [("event", "state"), ("close",)]


def test_it_says_the_goodbye_once(shop, clock):
    async def scenario():
        session, transport = open_session(shop, clock)
        await session.start()
        await transport.wait_for(lambda: session.state == SessionState.LISTENING)
        await session.receive_text("That's all, thanks, goodbye")
        await session.wait_ended(timeout=10)
        return session, transport

    session, transport = run(scenario)
    goodbye = transport.transcripts("assistant")[-1]
    assert transport.transcripts("assistant").count(goodbye) == 1
    call = CallLog.objects.get(call_sid=session.call_sid)
    assert list(call.turns.values_list("text", flat=True)).count(goodbye) == 1
    assert call.outcome == CallLog.Outcome.RESOLVED


def test_it_keeps_what_is_typed_while_the_call_is_starting(shop, clock):
    async def scenario():
        session, transport = open_session(shop, clock)
        # As the browser consumer does: start() in its own task, the caller's first words right behind
        # it (they arrive while start() is still opening the CallLog; the engine does not exist yet).
        starting = asyncio.ensure_future(session.start())
        typed = asyncio.ensure_future(session.receive_text("What time do you close today?"))
        await asyncio.gather(starting, typed)
        await transport.wait_for(lambda: transport.events_of("metrics"))
        await session.stop()
        return transport

    transport = run(scenario)
    assert transport.transcripts("caller") == ["What time do you close today?"]
    assert "5:30 PM" in transport.transcripts("assistant")[-1]
