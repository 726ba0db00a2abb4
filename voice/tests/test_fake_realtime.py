"""The fake OpenAI Realtime server, driven by the official SDK client exactly as the voice engine will."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import sys

import pytest
from openai import AsyncOpenAI
from websockets.exceptions import ConnectionClosedError

from voice import audio
from voice.testing.fake_realtime import FakeRealtime, Turn, tone

PCMU_SESSION = {
    "type": "realtime",
    "model": "gpt-realtime",
    "instructions": "You are the receptionist of Demo Auto Repair.",
    "output_modalities": ["audio"],
    "audio": {
        "input": {
            "format": {"type": "audio/pcmu"},
            "transcription": {"model": "gpt-4o-mini-transcribe"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 300},
        },
        "output": {"format": {"type": "audio/pcmu"}, "voice": "marin"},
    },
    "tools": [
        {
            "type": "function",
            "name": "get_work_order_status",
            "description": "Status of a work order",
            "parameters": {"type": "object", "properties": {"ro": {"type": "string"}}},
        }
    ],
}


def speech(ms: int) -> bytes:
    """Loud μ-law audio the fake's energy VAD takes for speech."""
    return tone(ms, {"type": "audio/pcmu"}, freq=300, amplitude=8000)


async def recv_until(conn, type_: str, seen: list | None = None):
    """Receive events until one of `type_` arrives; collect the types on the way."""
    async with asyncio.timeout(5):
        while True:
            event = await conn.recv()
            if seen is not None:
                seen.append(event)
            if event.type == type_:
                return event


async def say(conn, ms: int = 400, silence_ms: int = 400) -> None:
    """Stream caller speech then silence in 20 ms frames, like a relay forwarding Twilio media."""
    for frame in audio.split_frames(speech(ms) + audio.silence(silence_ms)):
        await conn.input_audio_buffer.append(audio=audio.b64encode_audio(frame))


@pytest.fixture
async def fake():
    async with FakeRealtime() as server:
        yield server


def client(server: FakeRealtime) -> AsyncOpenAI:
    return AsyncOpenAI(api_key="test", websocket_base_url=server.url)


async def test_it_greets_with_session_created_and_applies_session_update(fake):
    async with client(fake).realtime.connect(model="gpt-realtime") as conn:
        created = await conn.recv()
        assert created.type == "session.created"
        assert created.session.audio.input.format.type == "audio/pcm"

        await conn.session.update(session=PCMU_SESSION)
        updated = await recv_until(conn, "session.updated")

    session = updated.session
    assert session.audio.input.format.type == "audio/pcmu"
    assert session.audio.output.voice == "marin"
    assert session.audio.input.turn_detection.silence_duration_ms == 300
    assert session.audio.input.turn_detection.prefix_padding_ms == 300  # defaults kept
    assert session.tools[0].name == "get_work_order_status"
    assert fake.connection.model == "gpt-realtime"
    assert fake.connection.headers["authorization"] == "Bearer test"


@pytest.mark.parametrize(
    ("session", "param"),
    [
        ({"modalities": ["audio"], "type": "realtime"}, "session.modalities"),
        ({"output_modalities": ["audio"]}, "session.type"),
        ({"type": "realtime", "audio": {"input": {"format": "g711_ulaw"}}}, "session.audio.input.format"),
        ({"type": "realtime", "audio": {"output": {"format": {"type": "audio/pcm", "rate": 16000}}}}, None),
    ],
)
async def test_it_rejects_beta_style_sessions_with_an_error_event(fake, session, param):
    async with client(fake).realtime.connect(model="gpt-realtime") as conn:
        await conn.recv()
        await conn.send({"type": "session.update", "session": session, "event_id": "evt_client_1"})
        error = await recv_until(conn, "error")

    assert error.error.event_id == "evt_client_1"
    if param:
        assert error.error.param == param
    assert not fake.connection.sent_events("session.updated")


async def test_it_counts_appended_audio_and_reports_speech_with_a_transcript(fake):
    fake.script = [Turn(transcript="what time do you close", reply="We close at six.")]
    seen: list = []
    async with client(fake).realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session=PCMU_SESSION)
        await recv_until(conn, "session.updated")
        await say(conn, ms=600, silence_ms=400)
        done = await recv_until(conn, "response.done", seen)
        transcription = [e for e in seen if e.type == "conversation.item.input_audio_transcription.completed"]

    types = [e.type for e in seen]
    started = next(e for e in seen if e.type == "input_audio_buffer.speech_started")
    stopped = next(e for e in seen if e.type == "input_audio_buffer.speech_stopped")
    assert types.index("input_audio_buffer.speech_started") < types.index("input_audio_buffer.speech_stopped")
    assert types.index("input_audio_buffer.committed") < types.index("response.created")
    assert 0 <= started.audio_start_ms <= 100
    assert 500 <= stopped.audio_end_ms <= 700
    assert stopped.item_id == started.item_id
    assert transcription[0].transcript == "what time do you close"
    assert done.response.status == "completed"
    assert done.response.output[0].content[0].transcript == "We close at six."
    assert done.response.usage.total_tokens > 0
    assert fake.connection.audio_bytes_received == 8 * 1000  # 600 + 400 ms of μ-law, padded to frames

    deltas = [e for e in seen if e.type == "response.output_audio.delta"]
    reply_audio = b"".join(base64.b64decode(e.delta) for e in deltas)
    assert reply_audio and not audio.is_silent(reply_audio, audio.MULAW_8K)
    transcript = "".join(e.delta for e in seen if e.type == "response.output_audio_transcript.delta")
    assert transcript == "We close at six."


async def test_it_runs_a_scripted_function_call_round_trip(fake):
    fake.script = [
        Turn(
            transcript="is my civic ready",
            tool_call=("get_work_order_status", {"ro": "1234"}),
            reply=lambda output: f"Your Civic is {output['status']}.",
        )
    ]
    async with client(fake).realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session=PCMU_SESSION)
        await recv_until(conn, "session.updated")
        await say(conn)
        seen: list = []
        first = await recv_until(conn, "response.done", seen)
        call = first.response.output[0]
        args_done = next(e for e in seen if e.type == "response.function_call_arguments.done")

        await conn.conversation.item.create(
            item={"type": "function_call_output", "call_id": call.call_id, "output": json.dumps({"status": "ready"})}
        )
        await recv_until(conn, "conversation.item.done")
        await conn.response.create()
        second = await recv_until(conn, "response.done")

    assert call.type == "function_call"
    assert call.name == "get_work_order_status"
    assert json.loads(call.arguments) == {"ro": "1234"}
    assert args_done.call_id == call.call_id and args_done.name == "get_work_order_status"
    assert "".join(e.delta for e in seen if e.type == "response.function_call_arguments.delta") == call.arguments
    assert second.response.output[0].content[0].transcript == "Your Civic is ready."
    assert fake.connection.function_outputs == {call.call_id: {"status": "ready"}}


async def test_it_cancels_on_barge_in_and_truncates_what_was_heard(fake):
    fake.script = [Turn(transcript="hi", reply="Thanks for calling, how can I help you today?", stall_after=3)]
    async with client(fake).realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session=PCMU_SESSION)
        await recv_until(conn, "session.updated")
        await say(conn)
        seen: list = []
        async with asyncio.timeout(5):
            while len([e for e in seen if e.type == "response.output_audio.delta"]) < 3:
                seen.append(await conn.recv())
        item_id = seen[-1].item_id

        await conn.response.cancel()
        done = await recv_until(conn, "response.done")
        await conn.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=120)
        truncated = await recv_until(conn, "conversation.item.truncated")

        await conn.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=60_000)
        too_long = await recv_until(conn, "error")
        await conn.response.cancel()
        not_active = await recv_until(conn, "error")

    assert done.response.status == "cancelled"
    assert done.response.status_details.reason == "client_cancelled"
    assert truncated.item_id == item_id and truncated.audio_end_ms == 120
    assert too_long.error.param == "audio_end_ms"
    assert not_active.error.code == "response_cancel_not_active"


async def test_it_cancels_a_response_when_the_caller_speaks_over_it(fake):
    fake.script = [Turn(transcript="hi", reply="A long answer that the caller interrupts.", stall_after=1)]
    async with client(fake).realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session=PCMU_SESSION)
        await recv_until(conn, "session.updated")
        await say(conn)
        await recv_until(conn, "response.output_audio.delta")
        await say(conn, ms=200, silence_ms=0)  # barge-in: server VAD interrupts the response
        seen: list = []
        done = await recv_until(conn, "response.done", seen)

    types = [e.type for e in seen]
    assert "input_audio_buffer.speech_started" in types
    assert "response.output_audio.delta" not in types[types.index("input_audio_buffer.speech_started") :]
    assert done.response.status == "cancelled"
    assert done.response.status_details.reason == "turn_detected"


async def test_it_sends_injected_errors_and_keeps_the_socket_open(fake):
    async with client(fake).realtime.connect(model="gpt-realtime") as conn:
        await conn.recv()
        await fake.connection.send_error("The server had an error.", type="server_error", code=None)
        error = await recv_until(conn, "error")
        await conn.input_audio_buffer.commit()
        empty = await recv_until(conn, "error")
        await conn.send({"type": "no.such.event"})
        unknown = await recv_until(conn, "error")

    assert error.error.type == "server_error"
    assert empty.error.code == "input_audio_buffer_commit_empty"
    assert unknown.error.param == "type"


async def test_it_drops_the_socket_mid_response(fake):
    fake.script = [Turn(reply="This reply never finishes.", drop_after=2)]
    async with client(fake).realtime.connect(model="gpt-realtime") as conn:
        await conn.recv()
        await conn.response.create()
        deltas = 0
        with pytest.raises(ConnectionClosedError):
            async with asyncio.timeout(5):
                async for event in conn:
                    deltas += event.type == "response.output_audio.delta"

    assert deltas == 2


async def test_it_holds_a_delayed_response_until_released(fake):
    fake.script = [Turn(reply="Finally.", delay=math.inf)]
    async with client(fake).realtime.connect(model="gpt-realtime") as conn:
        await conn.recv()
        await conn.response.create()
        await fake.wait_until(lambda: fake.connection.response_active)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):  # the client's own response timeout
                await recv_until(conn, "response.created")
        fake.connection.release()
        done = await recv_until(conn, "response.done")

    assert done.response.output[0].content[0].transcript == "Finally."


async def test_it_answers_text_only_responses_and_manual_commits(fake):
    fake.script = [Turn(transcript="hello", reply="Hi there.")]
    session = {**PCMU_SESSION, "audio": {**PCMU_SESSION["audio"], "input": {"format": {"type": "audio/pcmu"}}}}
    session["audio"]["input"]["turn_detection"] = None
    async with client(fake).realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session=session)
        await recv_until(conn, "session.updated")
        await say(conn)
        await conn.input_audio_buffer.commit()
        await recv_until(conn, "input_audio_buffer.committed")
        await conn.response.create(response={"output_modalities": ["text"]})
        seen: list = []
        done = await recv_until(conn, "response.done", seen)

    assert "input_audio_buffer.speech_started" not in [e.type for e in seen]
    assert "".join(e.delta for e in seen if e.type == "response.output_text.delta") == "Hi there."
    assert done.response.output[0].content[0].text == "Hi there."


async def test_it_refuses_connections_without_a_bearer_token(fake):
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as excinfo:
        async with connect(f"{fake.url}/realtime?model=gpt-realtime"):
            pass
    assert excinfo.value.response.status_code == 401


async def test_it_runs_from_the_command_line(tmp_path):
    script = tmp_path / "turns.json"
    script.write_text(json.dumps([{"reply": "From the command line."}]))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "voice.testing.fake_realtime",
        "--port",
        "0",
        "--script",
        str(script),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(10):
            line = (await proc.stdout.readline()).decode()
        url = line.split(" on ")[1].split()[0]
        async with AsyncOpenAI(api_key="test", websocket_base_url=url).realtime.connect(model="gpt-realtime") as conn:
            await conn.recv()
            await conn.response.create()
            done = await recv_until(conn, "response.done")
    finally:
        proc.terminate()
        await proc.wait()
    assert done.response.output[0].content[0].transcript == "From the command line."


async def test_it_lets_a_test_script_the_next_turn_of_a_live_connection(fake):
    async with client(fake).realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session=PCMU_SESSION)
        await recv_until(conn, "session.updated")
        fake.connection.script.append(Turn(transcript="where are you", reply="On Main Street."))
        await say(conn)
        seen: list = []
        done = await recv_until(conn, "response.done", seen)

    transcripts = [e.transcript for e in seen if e.type == "conversation.item.input_audio_transcription.completed"]
    assert transcripts == ["where are you"]
    assert done.response.output[0].content[0].transcript == "On Main Street."
