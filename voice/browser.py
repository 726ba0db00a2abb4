"""The browser's voice call: the `/ws/voice/stream/` wire protocol and its `Transport`.

The `/voice-test` page opens `ws(s)://<host>/ws/voice/stream/?shop=<slug>` with the user's session
cookie. Frames:

Browser → server
    binary                                  caller audio: PCM16 little-endian mono 16 kHz (`INPUT_FORMAT`),
                                            any whole number of samples up to `MAX_AUDIO_FRAME` bytes
                                            (the page sends 20 ms = 640 bytes)
    {"type": "text", "text": "..."}         typed fallback: what the caller says
    {"type": "mark", "name": "..."}         playback reached this mark (echo of a server mark)
    {"type": "dtmf", "digit": "0"}          a key press ("0" = a person)
    {"type": "stop"}                        the caller hangs up

Server → browser
    {"type": "hello", "call_sid", "shop": {"slug", "name"}, "engine",
     "input": {"encoding": "pcm16", "sample_rate": 16000, "frame_ms": 20},
     "output": {"encoding": "pcm16", "sample_rate": 24000}}      first frame after accept
    binary                                  receptionist audio: PCM16 LE mono at `output.sample_rate`,
                                            to be played back to back in arrival order
    {"type": "mark", "name": "..."}         echo it once everything received before it has played
    {"type": "clear"}                       barge-in: drop all queued audio now (echo pending marks)
    {"type": "transcript" | "state" | "metrics" | "engine", ...}   VoiceSession's events, as sent
    close 1000                              the call ended (goodbye, transfer, time limit, stop)
    close 4401 / 4403                       not logged in / not a member of that shop (after accept,
                                            so the page can tell which)
    close 1011                              the server failed; the CallLog says why

Bad frames (odd length, too long, not JSON, unknown type) are logged and ignored: one glitch from a
browser tab must not end the call.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from voice.audio import FRAME_MS, PCM16_16K, PCM16_24K, AudioFormat, b64decode_audio
from voice.conversation import MAX_TEXT_CHARS

logger = logging.getLogger(__name__)

WS_PATH = "ws/voice/stream/"
INPUT_FORMAT = PCM16_16K  # what pocketsphinx decodes natively; the page resamples the microphone to it
# 24 kHz is what OpenAI Realtime speaks (audio/pcm), so its audio passes through untouched; the offline
# engine's espeak-ng (22.05 kHz) is resampled either way, to 16 kHz or 24 kHz at the same cost.
OUTPUT_FORMAT = PCM16_24K
MAX_AUDIO_FRAME = 64 * 1024  # 2 s of 16 kHz PCM16: far more than a page sends at once
# Receptionist audio goes out in pieces of at most this size (~0.67 s at 24 kHz): a sentence of speech
# is one synthesis, and smaller messages start playing no later and keep each frame modest.
MAX_OUTPUT_FRAME = 32 * 1024
DTMF_DIGITS = frozenset("0123456789*#")
MAX_MARK_CHARS = 100

CLOSE_NORMAL = 1000
CLOSE_SERVER_ERROR = 1011
CLOSE_NOT_LOGGED_IN = 4401
CLOSE_FORBIDDEN = 4403


class WebSocket(Protocol):
    """What the transport needs from the consumer that owns the socket."""

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False) -> None:
        """Send one frame."""

    async def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Close the socket."""


def format_json(fmt: AudioFormat) -> dict[str, Any]:
    return {"encoding": fmt.encoding, "sample_rate": fmt.sample_rate}


def hello(*, call_sid: str, shop_slug: str, shop_name: str, engine: str | None) -> dict[str, Any]:
    """The first message of a call: what the page must send and how to play what it receives."""
    return {
        "type": "hello",
        "call_sid": call_sid,
        "shop": {"slug": shop_slug, "name": shop_name},
        "engine": engine,
        "input": {**format_json(INPUT_FORMAT), "frame_ms": FRAME_MS},
        "output": format_json(OUTPUT_FORMAT),
    }


class BrowserTransport:
    """`voice.transport.Transport` over the browser's WebSocket: audio as binary frames, the rest as
    JSON text frames. After `close()` (or once the socket is gone: `disconnected()`) sends are dropped,
    so a session finishing its last sentence after the caller left does not raise."""

    name = "browser"
    input_format = INPUT_FORMAT
    output_format = OUTPUT_FORMAT

    def __init__(self, socket: WebSocket) -> None:
        self._socket = socket
        self.closed = False
        self.audio_bytes_sent = 0

    def disconnected(self) -> None:
        self.closed = True

    async def send_audio(self, audio: bytes) -> None:
        if self.closed or not audio:
            return
        for start in range(0, len(audio), MAX_OUTPUT_FRAME):
            await self._socket.send(bytes_data=audio[start : start + MAX_OUTPUT_FRAME])
        self.audio_bytes_sent += len(audio)

    async def send_audio_b64(self, payload: str) -> None:
        await self.send_audio(b64decode_audio(payload))

    async def send_mark(self, name: str) -> None:
        await self._send_json({"type": "mark", "name": name})

    async def clear(self) -> None:
        await self._send_json({"type": "clear"})

    async def send_event(self, event: dict[str, Any]) -> None:
        await self._send_json(event)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        await self._socket.close(code=CLOSE_NORMAL)

    async def _send_json(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        await self._socket.send(text_data=json.dumps(message, default=str))


# -- what the browser sends ---------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Mark:
    name: str


@dataclass(frozen=True)
class Dtmf:
    digit: str


@dataclass(frozen=True)
class Stop:
    pass


Control = Text | Mark | Dtmf | Stop


class BadFrame(ValueError):
    """A frame from the browser that doesn't follow the protocol; the message says why (for the log)."""


def check_audio(data: bytes) -> bytes:
    """The frame if it is whole PCM16 samples of a sane size; raises BadFrame otherwise."""
    if not data:
        raise BadFrame("empty audio frame")
    if len(data) % 2:
        raise BadFrame(f"audio frame of {len(data)} bytes is not whole 16-bit samples")
    if len(data) > MAX_AUDIO_FRAME:
        raise BadFrame(f"audio frame of {len(data)} bytes is over {MAX_AUDIO_FRAME}")
    return data


def parse_control(text: str) -> Control:
    """A JSON text frame from the page → what it asks for; raises BadFrame for anything else."""
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise BadFrame(f"not JSON ({exc.__class__.__name__})") from None
    if not isinstance(message, dict):
        raise BadFrame("not a JSON object")
    kind = message.get("type")
    if kind == "text":
        said = message.get("text")
        if not isinstance(said, str) or not said.strip():
            raise BadFrame("text message without text")
        if len(said) > MAX_TEXT_CHARS:
            raise BadFrame(f"text message over {MAX_TEXT_CHARS} characters")
        return Text(said.strip())
    if kind == "mark":
        name = message.get("name")
        if not isinstance(name, str) or not name or len(name) > MAX_MARK_CHARS:
            raise BadFrame("mark without a usable name")
        return Mark(name)
    if kind == "dtmf":
        digit = message.get("digit")
        if not isinstance(digit, str) or digit not in DTMF_DIGITS:
            raise BadFrame("dtmf digit must be one of 0-9 * #")
        return Dtmf(digit)
    if kind == "stop":
        return Stop()
    raise BadFrame(f"unknown message type {str(kind)[:20]!r}")
