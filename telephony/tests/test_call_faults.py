"""Faults in the call path, through the whole stack (issue #7, part 3): OpenAI unreachable or slow, and the
server process killed mid-call. The servers, the database and the helpers are test_e2e_calls.py's
(Daphne in a subprocess on a fresh SQLite file or PostgreSQL database, the simulator playing Twilio,
the fake Realtime server on a fixed port); OpenAI's faults are made by what listens on that port.

What the caller hears is measured by the simulator: `greeting_ms` (stream start → first audio),
`first_audio_ms` (end of a line → first audio back) and `dead_air_ms` (the longest silence while the
caller waited for an answer, audio "played" the moment it arrives: an upper bound). Every call here
must keep `dead_air_ms` under 3 s. The caller waits 3.5 s of quiet before deciding an answer is over,
so a longer silence inside an answer would show as a gap, not be mistaken for its end.
"""

# The servers' fixtures are test_e2e_calls.py's, imported; tests taking them as arguments "redefine" them.
# ruff: noqa: F811
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from telephony.simulator import place_call, send_status_callback
from telephony.tests.test_e2e_calls import (  # noqa: F401 - fixtures among them
    FAKE_REALTIME_PORT,
    Heard,
    Server,
    caller,
    fake,
    realtime,
    records,
    server_env,
    spoken,
    turns,
)
from voice.session import FILLER
from voice.testing.fake_realtime import Turn

pytestmark = pytest.mark.slow

DEAD_AIR_MS = 3000  # the most silence a caller may sit through
GREETING_MS = 2500  # OpenAI unreachable: the offline greeting starts within this (1.5 s connect budget + start)
FILLER_AFTER_MS = 1500


def patient(server: Server, **overrides: Any) -> Any:
    return caller(server, quiet_ms=3500, **overrides)


@pytest.fixture
async def black_hole() -> AsyncIterator[list[asyncio.StreamWriter]]:
    """An "OpenAI" that accepts the TCP connection and never answers the WebSocket handshake."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read()  # until the client gives up

    server = await asyncio.start_server(hold, "127.0.0.1", FAKE_REALTIME_PORT)
    async with server:
        yield held
    for writer in held:
        writer.close()


def assert_offline_from_the_start(result: Any, record: dict[str, Any]) -> None:
    assert result.ok, result.errors
    assert result.greeting_ms is not None and result.greeting_ms < GREETING_MS
    assert result.exchanges[0].first_audio_ms is not None and result.exchanges[0].audio_ms > 500
    assert result.dead_air_ms < DEAD_AIR_MS
    assert record["engine"] == "local"
    assert record["fallback_reason"].startswith("openai realtime unavailable")
    assert len(turns(record, "assistant")) >= 2  # the greeting and an answer, in the offline voice


async def test_it_answers_offline_when_openai_refuses_the_connection(realtime, records):
    # Nothing listens on the Realtime port: the connection is refused at once.
    result = await place_call(patient(realtime), [spoken("what are your hours")])
    realtime.stream_closed(result.call_sid)
    assert_offline_from_the_start(result, records(result.call_sid))
    print(f"refused: greeting {result.greeting_ms:.0f} ms, dead air {result.dead_air_ms:.0f} ms")


async def test_it_answers_offline_when_openai_never_completes_the_handshake(realtime, records, black_hole):
    result = await place_call(patient(realtime), [spoken("what are your hours")])
    realtime.stream_closed(result.call_sid)
    assert black_hole  # the server did reach it
    record = records(result.call_sid)
    assert_offline_from_the_start(result, record)
    assert "Timeout" in record["fallback_reason"]
    print(f"no handshake: greeting {result.greeting_ms:.0f} ms, dead air {result.dead_air_ms:.0f} ms")


async def test_it_says_a_filler_when_the_model_is_slow_to_answer(realtime, fake, records):
    """The model takes 3 s to start its answer: the filler, in the offline voice, fills the gap after
    1.5 s (plus the Realtime VAD's 0.5 s end-of-speech window), and the answer follows."""
    fake.script = [Turn(transcript="where are you located", reply="We are at twelve Elm Street.", delay=3.0)]
    heard = Heard()
    result = await place_call(patient(realtime), [spoken("where are you located")], probe=heard)
    realtime.stream_closed(result.call_sid)
    assert result.ok, result.errors
    exchange = result.exchanges[0]
    filler_at = heard.first_not_from(fake, exchange.ended_at)  # the offline voice: the filler
    assert filler_at is not None
    filler_ms = (filler_at - exchange.ended_at) * 1000
    assert exchange.first_audio_ms == pytest.approx(filler_ms)  # the first thing heard was the filler
    assert FILLER_AFTER_MS <= filler_ms < FILLER_AFTER_MS + 1000
    answer = fake.connection.sent_events("response.output_audio.delta")[-1]["delta"]
    assert any(payload == answer for _, payload in heard.media)  # and the model's answer came after it
    assert result.dead_air_ms < DEAD_AIR_MS
    record = records(result.call_sid)
    assert record["engine"] == "openai" and not record["fallback_reason"]
    assert "We are at twelve Elm Street." in turns(record, "assistant")
    assert FILLER not in turns(record, "assistant")
    print(f"slow model: filler after {filler_ms:.0f} ms, dead air {result.dead_air_ms:.0f} ms")


async def test_the_status_callback_closes_a_call_whose_server_was_killed(server_env, records):
    """SIGKILL the server mid-call: nothing in it can close the CallLog. Twilio's `completed` status
    callback, to the restarted server, does: status, ended_at, Twilio's duration, outcome, summary."""
    server = Server({**server_env, "VOICE_ENGINE": "local"})
    try:
        heard = Heard()
        config = caller(server, hold=True, status_callback=False, call_timeout=60)
        call = asyncio.create_task(place_call(config, probe=heard))
        async with asyncio.timeout(30):
            await heard.first.wait()  # the greeting is playing
        server.proc.kill()
        server.proc.wait(10)
        async with asyncio.timeout(30):
            result = await call
    finally:
        server.stop()
    assert result.closed_by == "server"  # the stream died with the process
    before = records(result.call_sid)
    assert before is not None and before["status"] == "in_progress" and before["ended_at"] is None

    restarted = Server({**server_env, "VOICE_ENGINE": "local"})
    try:
        status = await send_status_callback(caller(restarted), result.call_sid, duration_s=7)
    finally:
        restarted.stop()
    assert status == 204
    after = records(result.call_sid)
    assert after["status"] == "completed"
    assert after["ended_at"] is not None
    assert after["duration_seconds"] == 7
    assert after["outcome"] == "caller_hung_up"
    assert after["summary"]  # queued on close (eager here) and written
