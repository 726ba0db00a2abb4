"""A minimal Twilio ↔ OpenAI Realtime relay, the yardstick for bench/calls.py (issue #5: "Django and Channels
must not cost more" than a minimal relay). It does what Twilio's published Python sample does — TwiML on the
voice webhook, then per call: open the Realtime socket, `session.update` (μ-law both ways, server VAD),
greet, forward each media payload as `input_audio_buffer.append`, each audio delta back as `media` + `mark`,
`clear` on barge-in — and nothing else: no signatures, tokens, database, call records, tools, fallbacks or
metrics. It is a raw ASGI app (leaner than the sample's FastAPI) on the same uvicorn + uvloop + websockets
as production, so the comparison is our app against the least a relay can do on this machine.

    REFERENCE_REALTIME_URL=ws://127.0.0.1:8765/v1 .venv/bin/uvicorn bench.reference_relay:app \
        --port 8100 --loop uvloop --ws websockets-sansio
    .venv/bin/python bench/calls.py --servers external --url http://127.0.0.1:8100 \
        --stream-url ws://127.0.0.1:8100/media-stream --server-pid <uvicorn's pid> --fake-port 8765 --calls 50
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import Any

import websockets

REALTIME_URL = os.environ.get("REFERENCE_REALTIME_URL", "ws://127.0.0.1:8765/v1")
MODEL = "gpt-realtime"
TWIML = (
    b'<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
    b'<Stream url="wss://example.invalid/media-stream" /></Connect></Response>'
)
SESSION = {
    "type": "session.update",
    "session": {
        "type": "realtime",
        "model": MODEL,
        "output_modalities": ["audio"],
        "instructions": "You are a receptionist.",
        "audio": {
            "input": {"format": {"type": "audio/pcmu"}, "turn_detection": {"type": "server_vad"}},
            "output": {"format": {"type": "audio/pcmu"}, "voice": "alloy"},
        },
    },
}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/xml")]})
        await send({"type": "http.response.body", "body": TWIML})
    elif scope["type"] == "websocket":
        await media_stream(receive, send)
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return


async def media_stream(receive: Any, send: Any) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    openai = await websockets.connect(
        f"{REALTIME_URL}/realtime?model={MODEL}", additional_headers={"Authorization": "Bearer reference"}
    )
    await openai.send(json.dumps(SESSION))
    await openai.send('{"type":"response.create"}')  # the greeting
    stream_sid: list[str] = [""]

    async def from_twilio() -> None:
        reader: asyncio.Task[None] | None = None
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                data = json.loads(message["text"])
                event = data.get("event")
                if event == "media":
                    await openai.send(
                        json.dumps({"type": "input_audio_buffer.append", "audio": data["media"]["payload"]})
                    )
                elif event == "start":
                    # Audio goes to Twilio only once its streamSid is known (sent earlier, it names no stream).
                    stream_sid[0] = data["start"]["streamSid"]
                    reader = asyncio.create_task(to_twilio())
                elif event == "stop":
                    return
        finally:
            if reader is not None:
                reader.cancel()

    async def to_twilio() -> None:
        async for raw in openai:
            event = json.loads(raw)
            kind = event.get("type")
            if kind == "response.output_audio.delta":
                media = {"event": "media", "streamSid": stream_sid[0], "media": {"payload": event["delta"]}}
                await send({"type": "websocket.send", "text": json.dumps(media)})
                mark = {"event": "mark", "streamSid": stream_sid[0], "mark": {"name": "responsePart"}}
                await send({"type": "websocket.send", "text": json.dumps(mark)})
            elif kind == "input_audio_buffer.speech_started":
                await send(
                    {"type": "websocket.send", "text": json.dumps({"event": "clear", "streamSid": stream_sid[0]})}
                )

    try:
        await from_twilio()
    finally:
        with contextlib.suppress(Exception):
            await openai.close()
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close"})
