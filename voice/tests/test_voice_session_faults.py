"""OpenAI slow, at the session level, on the real clock: the filler comes 1.5 s after the caller stopped,
whether the model or a tool (or both, one after the other) keeps them waiting.

The Realtime fake runs the model (voice.testing.fake_realtime, `Turn.delay` holds a response back); the
tool is the registry's own, held until the test has heard the filler. The filler's time is taken when its
transcript arrives, which follows its audio: an upper bound on when the caller started hearing it.
"""

# The `openai` fixture is test_voice_session_realtime.py's, imported; tests taking it "redefine" it.
# ruff: noqa: F811
from __future__ import annotations

import math
import shutil
import time

import pytest

from calls.models import CallLog
from voice.session import FILLER
from voice.testing.fake_realtime import FakeRealtime, Turn
from voice.tests.test_voice_session_realtime import greeted, open_session, openai, run, speak  # noqa: F401

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
]

FILLER_AFTER_MS = 1500.0
SLACK_MS = 500.0  # the filler's own response, and a busy 2-core machine


def filler_heard_after(script, shop, clock, settings, release=None):
    """Play one caller turn; returns (ms from the end of the caller's turn to the filler, what was said,
    the CallLog)."""

    async def scenario():
        async with FakeRealtime(script) as fake:
            session, transport = open_session(shop, clock, fake, settings)  # default filler_after: 1.5 s
            await greeted(session, transport)
            await speak(session)
            await transport.wait_for(lambda: FILLER in transport.transcripts("assistant"))
            heard_ms = (time.perf_counter() - session.turns[-1].started) * 1000
            if release is not None:
                release.set()
            await transport.wait_for(lambda: any("12 Elm Street" in t for t in transport.transcripts("assistant")))
            await session.stop()
            return heard_ms, transport.transcripts("assistant"), session

    heard_ms, said, session = run(scenario)
    print(f"filler heard {heard_ms:.0f} ms after the caller's turn ended")
    return heard_ms, said, CallLog.objects.get(call_sid=session.call_sid)


def test_a_slow_tool_gets_the_filler_once_the_caller_has_waited_1_5_s(shop, clock, openai, slow_location):
    script = [Turn(transcript="where are you", tool_call=("get_location", {}), reply=lambda out: out["speak"])]
    heard_ms, said, call = filler_heard_after(script, shop, clock, openai, slow_location)
    assert FILLER_AFTER_MS <= heard_ms < FILLER_AFTER_MS + SLACK_MS
    assert said.count(FILLER) == 1 and "12 Elm Street" in said[-1]
    assert call.engine == "openai" and not call.fallback_reason


def test_a_slow_model_then_a_slow_tool_share_the_same_1_5_s(shop, clock, openai, slow_location):
    """The model takes 1 s to call the tool: the filler comes 0.5 s into the tool, not 1.5 s into it."""
    script = [
        Turn(transcript="where are you", tool_call=("get_location", {}), reply=lambda out: out["speak"], delay=1.0)
    ]
    heard_ms, said, call = filler_heard_after(script, shop, clock, openai, slow_location)
    assert FILLER_AFTER_MS <= heard_ms < FILLER_AFTER_MS + SLACK_MS
    assert said.count(FILLER) == 1


def test_a_slow_model_gets_the_filler_in_the_offline_voice_after_1_5_s(shop, clock, openai):
    script = [Turn(transcript="where are you", reply="We are at 12 Elm Street.", delay=2.5)]
    heard_ms, said, call = filler_heard_after(script, shop, clock, openai)
    assert FILLER_AFTER_MS <= heard_ms < FILLER_AFTER_MS + SLACK_MS
    assert said.count(FILLER) == 1 and said[-1] == "We are at 12 Elm Street."
    assert FILLER not in list(call.turns.values_list("text", flat=True))


def test_a_tool_that_never_answers_is_given_up_and_the_caller_is_told(shop, clock, openai, slow_location):
    """The tool hangs (slow_location is never released): the filler, then the tool is given up after
    TOOL_TIMEOUT_SECONDS and the model answers with that failure. No silence, as played, reaches 3 s."""
    script = [
        Turn(
            transcript="where are you",
            tool_call=("get_location", {}),
            reply=lambda out: "Sorry, I can't look that up right now." if not out["ok"] else out["speak"],
        )
    ]

    async def scenario():
        async with FakeRealtime(script) as fake:
            session, transport = open_session(shop, clock, fake, openai)
            await greeted(session, transport)
            heard: list[tuple[float, float]] = []  # (arrival, ms of audio): a far end playing it in real time
            send = transport.send_audio_b64

            async def timed(payload: str) -> None:
                heard.append((time.perf_counter(), len(payload) * 3 / 4 / 8))
                await send(payload)

            transport.send_audio_b64 = timed
            await speak(session)
            await transport.wait_for(lambda: "Sorry, I can't look that up right now." in transport.transcripts(), 15)
            ended = session.turns[-1].started
            await session.stop()
            return heard, ended, transport.transcripts("assistant"), session

    heard, ended, said, session = run(scenario)
    playing_until, longest = ended, 0.0
    for at, ms in heard:
        longest = max(longest, at - playing_until)
        playing_until = max(playing_until, at) + ms / 1000
    assert said.count(FILLER) == 1
    assert longest < 3.0
    call = CallLog.objects.get(call_sid=session.call_sid)
    assert list(call.tool_calls.values_list("name", "ok", "result_summary")) == [("get_location", False, "timeout")]
    print(f"hung tool: longest silence {longest * 1000:.0f} ms")


def test_a_greeting_the_model_never_starts_is_said_by_the_offline_engine_within_3_s(shop, clock, openai):
    """Connected, but the server never answers the greeting's response.create: the caller would hear
    nothing at all, so the greeting gets 2 s (not a turn's 5 s) before the offline engine says it."""

    async def scenario():
        async with FakeRealtime(line_delay=math.inf) as fake:
            session, transport = open_session(shop, clock, fake, openai)
            started = time.perf_counter()
            await session.start()
            await transport.wait_for(lambda: bool(transport.transcripts("assistant")))
            greeted_ms = (time.perf_counter() - started) * 1000
            await session.stop()
            return greeted_ms, transport.transcripts("assistant"), session

    greeted_ms, said, session = run(scenario)
    print(f"offline greeting heard {greeted_ms:.0f} ms after the call started")
    assert 2000 <= greeted_ms < 3000
    assert said == [shop.spoken_greeting]
    call = CallLog.objects.get(call_sid=session.call_sid)
    assert call.engine == "local"
    assert call.fallback_reason == "no response from OpenAI Realtime within 2 s"
