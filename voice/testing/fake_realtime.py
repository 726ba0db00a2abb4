"""A fake OpenAI Realtime server (GA shape) for tests and local runs.

It speaks the WebSocket protocol of `wss://api.openai.com/v1/realtime` closely enough for the official SDK
(`AsyncOpenAI(websocket_base_url="ws://127.0.0.1:PORT/v1").realtime.connect(model=...)`) and any relay to
be tested offline: `session.created` on connect, validated `session.update`, counted audio appends with a
simple energy VAD, scripted transcripts, spoken replies and function calls, barge-in cancellation,
truncation, and error injection. See docs in shared/protocols.md B3/B6 for the event sequences it follows.

It does not recognise audio: a test scripts what the caller "said" (`Turn.transcript`) and what the
assistant answers. Each connection plays its own copy of the script (`fake.connection.script`, a deque a
test may append to while the call runs). Everything a client sent is kept (`connection.received`,
`audio_bytes_received`, `function_outputs`) for assertions; `await fake.wait_until(predicate)` waits for it.

A `response.create` whose `response.instructions` quote a line to say word for word (`Say exactly ...:
"<line>"`, how VoiceSession has the model say its greeting and fixed lines) is answered with that line,
without taking a turn from the script — as the real model would say it.

Deliberate gaps: the beta protocol (an `OpenAI-Beta: realtime=v1` client gets `beta_api_shape_disabled`, as
after the beta shutdown), `idle_timeout_ms`, semantic VAD behaviour (treated like server VAD), and
out-of-band responses (`conversation: "none"`).

    fake = FakeRealtime(script=[Turn(transcript="is my civic ready",
                                     tool_call=("get_work_order_status", {"ro": "1234"}),
                                     reply="Your Civic is ready.")])
    async with fake:
        client = AsyncOpenAI(api_key="test", websocket_base_url=fake.url)

Command line (for other implementations and manual runs):
    python -m voice.testing.fake_realtime --port 8765 [--script turns.json] [--paced] [--chunk-ms 100]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import copy
import itertools
import json
import math
import re
import struct
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

FORMATS = {"audio/pcm", "audio/pcmu", "audio/pcma"}
BETA_SESSION_KEYS = {
    "modalities",
    "voice",
    "input_audio_format",
    "output_audio_format",
    "input_audio_transcription",
    "input_audio_noise_reduction",
    "turn_detection",
    "temperature",
    "max_response_output_tokens",
}
SERVER_VAD_DEFAULTS: dict[str, Any] = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 500,
    "idle_timeout_ms": None,
    "create_response": True,
    "interrupt_response": True,
}
SEMANTIC_VAD_DEFAULTS: dict[str, Any] = {
    "type": "semantic_vad",
    "eagerness": "auto",
    "create_response": True,
    "interrupt_response": True,
}
DEFAULT_REPLY = "This is the fake realtime server."

Reply = str | Callable[[Any], str]


@dataclass
class Turn:
    """One exchange of the script.

    transcript: what the caller said (sent as input transcription when the session asks for it).
    reply: what the assistant says; with a tool call, said after the client returns the tool's output
        (a callable gets the output, parsed from JSON when possible, and returns the text).
    tool_call: (name, arguments) the assistant calls first.
    reply_audio: exact audio bytes (in the session's output format) instead of a generated tone.
    text_only: answer with text (`response.output_text.*`) instead of audio.
    delay: seconds to wait before `response.created` (math.inf: until cancelled or `release()`).
    stall_after: stop after this many audio chunks until the response is cancelled or `release()`d.
    drop_after: abort the socket (no close frame) after this many audio chunks.
    """

    transcript: str | None = None
    reply: Reply | None = None
    tool_call: tuple[str, dict[str, Any]] | None = None
    reply_audio: bytes | None = None
    text_only: bool = False
    delay: float = 0.0
    stall_after: int | None = None
    drop_after: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Turn:
        tool = data.get("tool_call")
        if isinstance(tool, dict):
            tool = (tool["name"], tool.get("arguments", {}))
        elif isinstance(tool, list):
            tool = (tool[0], tool[1])
        return cls(
            transcript=data.get("transcript"),
            reply=data.get("reply"),
            tool_call=tool,
            text_only=bool(data.get("text_only", False)),
            delay=float(data.get("delay", 0.0)),
            stall_after=data.get("stall_after"),
            drop_after=data.get("drop_after"),
        )


def tone(ms: float, fmt: dict[str, Any], freq: float = 440.0, amplitude: int = 6000) -> bytes:
    """A sine tone in a Realtime audio format (`{"type": "audio/pcmu"}` etc.): audible, non-silent audio."""
    rate = _rate(fmt)
    n = int(rate * ms / 1000)
    step = 2 * math.pi * freq / rate
    pcm = struct.pack(f"<{n}h", *(int(amplitude * math.sin(step * i)) for i in range(n)))
    return _encode(pcm, fmt)


def _rate(fmt: dict[str, Any]) -> int:
    return int(fmt.get("rate", 24000)) if fmt["type"] == "audio/pcm" else 8000


def _bytes_per_ms(fmt: dict[str, Any]) -> float:
    return 48.0 if fmt["type"] == "audio/pcm" else 8.0


def _decode(data: bytes, fmt: dict[str, Any]) -> bytes:
    if fmt["type"] == "audio/pcmu":
        return audioop.ulaw2lin(data, 2)
    if fmt["type"] == "audio/pcma":
        return audioop.alaw2lin(data, 2)
    return data[: len(data) // 2 * 2]


def _encode(pcm: bytes, fmt: dict[str, Any]) -> bytes:
    if fmt["type"] == "audio/pcmu":
        return audioop.lin2ulaw(pcm, 2)
    if fmt["type"] == "audio/pcma":
        return audioop.lin2alaw(pcm, 2)
    return pcm


_SAY_EXACTLY = re.compile(r'say exactly[^"]*"(.*)"', re.IGNORECASE | re.DOTALL)


def _quoted_line(instructions: Any) -> str | None:
    """The line a `response.create` tells the model to say word for word (`Say exactly ...: "<line>"`)."""
    match = _SAY_EXACTLY.search(instructions) if isinstance(instructions, str) else None
    return match.group(1) if match else None


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "format":
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def response_usage(input_ms: float, output_audio_ms: float) -> dict[str, Any]:
    """A response.done `usage` block shaped like the real one: 100 text tokens of instructions, audio at
    ~10 tokens a second in and ~20 out, 20 tokens of transcript."""
    audio_in, audio_out, text_out = int(input_ms / 100), int(output_audio_ms / 50), 20
    return {
        "total_tokens": 100 + audio_in + audio_out + text_out,
        "input_tokens": 100 + audio_in,
        "output_tokens": audio_out + text_out,
        "input_token_details": {
            "text_tokens": 100,
            "audio_tokens": audio_in,
            "image_tokens": 0,
            "cached_tokens": 0,
            "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
    }


class ProtocolError(Exception):
    """A client event the real server would answer with an `error` event."""

    def __init__(self, message: str, *, code: str = "invalid_value", param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


@dataclass
class _Response:
    id: str
    turn: Turn
    kind: str  # "reply" | "tool_call"
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_reason: str = "client_cancelled"
    task: asyncio.Task[None] | None = None


@dataclass
class _Item:
    id: str
    role: str
    type: str
    audio_ms: float = 0.0  # assistant audio sent for this item


class FakeConnection:
    """One client connection: its session, what it sent, what it was sent."""

    def __init__(self, server: FakeRealtime, ws: ServerConnection, model: str, script: Iterable[Turn]) -> None:
        self.server = server
        self.ws = ws
        self.model = model
        self.headers = dict(ws.request.headers) if ws.request else {}
        self.received: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        self.audio_bytes_received = 0
        self.function_outputs: dict[str, Any] = {}
        self.closed = asyncio.Event()
        self.dropped_at: float | None = None  # time.perf_counter() when drop() aborted the socket
        self.reading = asyncio.Event()  # cleared: the server stops reading, and the client's socket fills
        self.reading.set()
        self.script: deque[Turn] = deque(script)  # this call's remaining turns; tests may append more
        self._ids = itertools.count(1)
        self.session: dict[str, Any] = self._default_session()
        self.items: dict[str, _Item] = {}
        self._last_item_id: str | None = None
        self._response: _Response | None = None
        self._pending_turn: Turn | None = None
        self._follow_up: dict[str, Turn] = {}  # call_id -> turn waiting for the tool's output
        self._ready_follow_up: Turn | None = None
        # energy VAD
        self._input_ms = 0.0
        self._buffer_ms = 0.0
        self._speech_run_ms = 0.0
        self._silence_run_ms = 0.0
        self._in_speech = False
        self._speech_item: str | None = None
        self._vad_carry = b""

    def _next_turn(self) -> Turn | None:
        return self.script.popleft() if self.script else None

    # -- ids and sending ----------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    async def send(self, event: dict[str, Any]) -> None:
        event = {"type": event["type"], "event_id": self._id("event"), **event}
        self.sent.append(event)
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(json.dumps(event))

    async def send_error(
        self,
        message: str,
        *,
        code: str | None = "invalid_value",
        type: str = "invalid_request_error",
        param: str | None = None,
        event_id: str | None = None,
    ) -> None:
        """Send an `error` event, as the real server does for a bad client event or a server fault."""
        error = {"type": type, "code": code, "message": message, "param": param, "event_id": event_id}
        await self.send({"type": "error", "error": error})

    async def drop(self) -> None:
        """Abort the TCP connection without a close frame (the client sees an abnormal closure, 1006)."""
        self.dropped_at = time.perf_counter()
        if self.ws.transport is not None:
            self.ws.transport.abort()

    def release(self) -> None:
        """Let a response held by `Turn.delay=math.inf` or `Turn.stall_after` continue."""
        if self._response:
            self._response.released.set()

    def events(self, type: str) -> list[dict[str, Any]]:
        """Client events of one type, in arrival order."""
        return [e for e in self.received if e.get("type") == type]

    def sent_events(self, type: str) -> list[dict[str, Any]]:
        return [e for e in self.sent if e.get("type") == type]

    @property
    def response_active(self) -> bool:
        return self._response is not None

    # -- session ------------------------------------------------------------------------------

    def _default_session(self) -> dict[str, Any]:
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": self._id("sess"),
            "model": self.model,
            "expires_at": int(time.time()) + 3600,
            "output_modalities": ["audio"],
            "instructions": "",
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": None,
            "truncation": "auto",
            "prompt": None,
            "include": None,
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": dict(SERVER_VAD_DEFAULTS),
                },
                "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy", "speed": 1.0},
            },
        }

    @property
    def input_format(self) -> dict[str, Any]:
        return self.session["audio"]["input"]["format"]

    @property
    def output_format(self) -> dict[str, Any]:
        return self.session["audio"]["output"]["format"]

    @property
    def turn_detection(self) -> dict[str, Any] | None:
        return self.session["audio"]["input"]["turn_detection"]

    def _validate_session(self, patch: Any) -> dict[str, Any]:
        if not isinstance(patch, dict):
            raise ProtocolError("Invalid type for 'session': expected an object.", code="invalid_type", param="session")
        for key in sorted(BETA_SESSION_KEYS & patch.keys()):
            raise ProtocolError(
                f"Unknown parameter: 'session.{key}'.", code="unknown_parameter", param=f"session.{key}"
            )
        if patch.get("type") not in ("realtime", "transcription"):
            raise ProtocolError(
                "Missing required parameter: 'session.type'." if "type" not in patch else "Invalid 'session.type'.",
                code="missing_required_parameter" if "type" not in patch else "invalid_value",
                param="session.type",
            )
        modalities = patch.get("output_modalities")
        if modalities is not None and modalities not in (["audio"], ["text"]):
            raise ProtocolError("output_modalities must be ['audio'] or ['text'].", param="session.output_modalities")
        audio = patch.get("audio", {})
        if not isinstance(audio, dict):
            raise ProtocolError("Invalid type for 'session.audio'.", code="invalid_type", param="session.audio")
        for side in ("input", "output"):
            part = audio.get(side, {})
            if "format" in part:
                self._validate_format(part["format"], f"session.audio.{side}.format")
        td = audio.get("input", {}).get("turn_detection", "absent")
        if td not in ("absent", None) and (
            not isinstance(td, dict) or td.get("type") not in ("server_vad", "semantic_vad")
        ):
            raise ProtocolError(
                "turn_detection.type must be 'server_vad' or 'semantic_vad'.",
                param="session.audio.input.turn_detection.type",
            )
        for i, tool in enumerate(patch.get("tools") or []):
            if not isinstance(tool, dict) or tool.get("type") not in ("function", "mcp") or not tool.get("name"):
                raise ProtocolError("Each tool needs a type and a name.", param=f"session.tools[{i}]")
        return patch

    @staticmethod
    def _validate_format(fmt: Any, param: str) -> None:
        if not isinstance(fmt, dict):
            raise ProtocolError(
                f"Invalid type for '{param}': expected an object like {{'type': 'audio/pcmu'}}, got {fmt!r}.",
                code="invalid_type",
                param=param,
            )
        if fmt.get("type") not in FORMATS:
            raise ProtocolError(f"Invalid value for '{param}.type': {fmt.get('type')!r}.", param=f"{param}.type")
        if fmt["type"] == "audio/pcm" and fmt.get("rate", 24000) != 24000:
            raise ProtocolError("audio/pcm supports only rate 24000.", param=f"{param}.rate")

    async def _session_update(self, event: dict[str, Any]) -> None:
        patch = self._validate_session(event.get("session"))
        td = patch.get("audio", {}).get("input", {}).get("turn_detection", "absent")
        merged = _merge(self.session, patch)
        if isinstance(td, dict):
            defaults = SERVER_VAD_DEFAULTS if td["type"] == "server_vad" else SEMANTIC_VAD_DEFAULTS
            merged["audio"]["input"]["turn_detection"] = {**defaults, **td}
        self.session = merged
        await self.send({"type": "session.updated", "session": copy.deepcopy(self.session)})

    # -- input audio and VAD ------------------------------------------------------------------

    async def _append(self, event: dict[str, Any]) -> None:
        try:
            data = base64.b64decode(event.get("audio", ""), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ProtocolError("Invalid base64 audio.", param="audio") from exc
        self.audio_bytes_received += len(data)
        fmt = self.input_format
        ms = len(data) / _bytes_per_ms(fmt)
        self._buffer_ms += ms
        if self.turn_detection is None:
            self._input_ms += ms
            return
        await self._vad(_decode(data, fmt), _rate(fmt))

    async def _vad(self, pcm: bytes, rate: int) -> None:
        frame = rate // 50 * 2  # 20 ms of PCM16
        pcm = self._vad_carry + pcm
        usable = len(pcm) // frame * frame
        self._vad_carry = pcm[usable:]
        silence_ms = (self.turn_detection or {}).get("silence_duration_ms") or 500
        for start in range(0, usable, frame):
            loud = audioop.rms(pcm[start : start + frame], 2) >= self.server.vad_rms_threshold
            self._input_ms += 20
            if loud:
                self._speech_run_ms += 20
                self._silence_run_ms = 0
            else:
                self._silence_run_ms += 20
                self._speech_run_ms = 0
            if not self._in_speech and self._speech_run_ms >= self.server.vad_start_ms:
                self._in_speech = True
                self._speech_item = self._id("item")
                await self._speech_started(self._input_ms - self._speech_run_ms)
            elif self._in_speech and self._silence_run_ms >= silence_ms:
                self._in_speech = False
                await self._speech_stopped(self._input_ms - self._silence_run_ms)

    async def _speech_started(self, at_ms: float) -> None:
        await self.send(
            {"type": "input_audio_buffer.speech_started", "audio_start_ms": int(at_ms), "item_id": self._speech_item}
        )
        td = self.turn_detection or {}
        if self._response and td.get("interrupt_response", True):
            await self._cancel(self._response, reason="turn_detected")

    async def _speech_stopped(self, at_ms: float) -> None:
        item_id = self._speech_item or self._id("item")
        await self.send({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": int(at_ms), "item_id": item_id})
        await self._commit(item_id)
        if (self.turn_detection or {}).get("create_response", True):
            await self._start_response()

    async def _commit(self, item_id: str) -> None:
        turn = self._next_turn()
        self._pending_turn = turn
        self._buffer_ms = 0
        previous = self._last_item_id
        await self.send({"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": previous})
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        await self._add_item(_Item(item_id, "user", "message"), item)
        if self.session["audio"]["input"].get("transcription") and turn and turn.transcript is not None:
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.delta",
                    "item_id": item_id,
                    "content_index": 0,
                    "delta": turn.transcript,
                }
            )
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item_id,
                    "content_index": 0,
                    "transcript": turn.transcript,
                    "usage": {"type": "duration", "seconds": 1},
                }
            )

    async def _add_item(self, record: _Item, item: dict[str, Any]) -> None:
        previous = self._last_item_id
        self.items[record.id] = record
        self._last_item_id = record.id
        await self.send({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        await self.send({"type": "conversation.item.done", "previous_item_id": previous, "item": item})

    # -- client events ------------------------------------------------------------------------

    async def handle(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "session.update": self._session_update,
            "input_audio_buffer.append": self._append,
            "input_audio_buffer.commit": self._manual_commit,
            "input_audio_buffer.clear": self._clear,
            "conversation.item.create": self._item_create,
            "conversation.item.truncate": self._truncate,
            "conversation.item.delete": self._item_delete,
            "response.create": self._response_create,
            "response.cancel": self._response_cancel,
        }
        handler = handlers.get(str(kind))
        try:
            if handler is None:
                raise ProtocolError(f"Invalid value: '{kind}'. Unsupported event type.", param="type")
            await handler(event)
        except ProtocolError as exc:
            await self.send_error(str(exc), code=exc.code, param=exc.param, event_id=event.get("event_id"))

    async def _manual_commit(self, event: dict[str, Any]) -> None:
        if self._buffer_ms <= 0:
            raise ProtocolError(
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio.",
                code="input_audio_buffer_commit_empty",
            )
        await self._commit(self._id("item"))

    async def _clear(self, event: dict[str, Any]) -> None:
        self._buffer_ms = 0
        self._in_speech = False
        self._speech_run_ms = self._silence_run_ms = 0
        await self.send({"type": "input_audio_buffer.cleared"})

    async def _item_create(self, event: dict[str, Any]) -> None:
        item = dict(event.get("item") or {})
        kind = item.get("type")
        if kind not in ("message", "function_call_output", "function_call"):
            raise ProtocolError(f"Invalid item type {kind!r}.", param="item.type")
        item.setdefault("id", self._id("item"))
        item.setdefault("object", "realtime.item")
        item.setdefault("status", "completed")
        if kind == "function_call_output":
            call_id = item.get("call_id")
            if not call_id:
                raise ProtocolError("Missing required parameter: 'item.call_id'.", param="item.call_id")
            output = item.get("output", "")
            try:
                parsed = json.loads(output)
            except (TypeError, ValueError):
                parsed = output
            self.function_outputs[call_id] = parsed
            turn = self._follow_up.pop(call_id, None)
            if turn is not None:
                reply = turn.reply(parsed) if callable(turn.reply) else turn.reply
                self._ready_follow_up = Turn(
                    reply=reply,
                    reply_audio=turn.reply_audio,
                    text_only=turn.text_only,
                    stall_after=turn.stall_after,
                    drop_after=turn.drop_after,
                )
        await self._add_item(_Item(item["id"], item.get("role", ""), kind), item)

    async def _item_delete(self, event: dict[str, Any]) -> None:
        item_id = event.get("item_id")
        if item_id not in self.items:
            raise ProtocolError(f"Item with item_id '{item_id}' not found.", code="item_not_found", param="item_id")
        del self.items[item_id]
        await self.send({"type": "conversation.item.deleted", "item_id": item_id})

    async def _truncate(self, event: dict[str, Any]) -> None:
        item_id = event.get("item_id")
        item = self.items.get(str(item_id))
        if item is None:
            raise ProtocolError(f"Item with item_id '{item_id}' not found.", code="item_not_found", param="item_id")
        if item.role != "assistant":
            raise ProtocolError("Only assistant messages can be truncated.", param="item_id")
        end_ms = event.get("audio_end_ms")
        if not isinstance(end_ms, int) or end_ms < 0:
            raise ProtocolError("audio_end_ms must be a non-negative integer.", param="audio_end_ms")
        if end_ms > math.ceil(item.audio_ms):
            raise ProtocolError(
                f"Audio content of {int(item.audio_ms)}ms is already shorter than {end_ms}ms",
                param="audio_end_ms",
            )
        item.audio_ms = end_ms
        await self.send(
            {
                "type": "conversation.item.truncated",
                "item_id": item_id,
                "content_index": event.get("content_index", 0),
                "audio_end_ms": end_ms,
            }
        )

    async def _response_create(self, event: dict[str, Any]) -> None:
        if self._response is not None:
            raise ProtocolError(
                f"Conversation already has an active response in progress: {self._response.id}.",
                code="conversation_already_has_active_response",
            )
        overrides = event.get("response") or {}
        line = _quoted_line(overrides.get("instructions"))
        await self._start_response(text_only=overrides.get("output_modalities") == ["text"], line=line)

    async def _response_cancel(self, event: dict[str, Any]) -> None:
        wanted = event.get("response_id")
        active = self._response
        if active is None or (wanted and wanted != active.id):
            raise ProtocolError("Cancellation failed: no active response found", code="response_cancel_not_active")
        await self._cancel(active, reason="client_cancelled")

    # -- responses ----------------------------------------------------------------------------

    async def _start_response(self, *, text_only: bool = False, line: str | None = None) -> None:
        if self._response is not None:
            return
        if line is not None:  # "Say exactly: ..." — the model says the line; the script is untouched
            turn, kind = Turn(reply=line, delay=self.server.line_delay), "reply"
        elif self._ready_follow_up is not None:
            turn, kind = self._ready_follow_up, "reply"
            self._ready_follow_up = None
        else:
            turn = self._pending_turn or self._next_turn() or Turn(reply=self.server.default_reply)
            self._pending_turn = None
            kind = "tool_call" if turn.tool_call else "reply"
        if text_only and not turn.text_only:
            turn = Turn(**{**turn.__dict__, "text_only": True})
        response = _Response(id=self._id("resp"), turn=turn, kind=kind)
        self._response = response
        response.task = asyncio.create_task(self._run_response(response))

    async def _cancel(self, response: _Response, *, reason: str) -> None:
        response.cancel_reason = reason
        response.cancelled.set()
        if response.task is not None and response.task is not asyncio.current_task():
            await asyncio.shield(response.task)

    async def _wait_released(self, response: _Response, limit: float | None) -> None:
        waiters = {asyncio.ensure_future(response.cancelled.wait()), asyncio.ensure_future(response.released.wait())}
        try:
            await asyncio.wait(waiters, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        response.released.clear()

    async def _run_response(self, response: _Response) -> None:
        turn = response.turn
        try:
            if turn.delay:
                await self._wait_released(response, None if math.isinf(turn.delay) else turn.delay)
            base = {"object": "realtime.response", "id": response.id, "conversation_id": "conv_fake"}
            await self.send(
                {
                    "type": "response.created",
                    "response": {
                        **base,
                        "status": "in_progress",
                        "status_details": None,
                        "output": [],
                        "usage": None,
                        "output_modalities": ["text"] if turn.text_only else ["audio"],
                        "audio": {"output": {"format": self.output_format, "voice": self._voice}},
                    },
                }
            )
            if response.kind == "tool_call":
                item = await self._function_call(response)
            else:
                item = await self._speak(response)
            status = "cancelled" if response.cancelled.is_set() else "completed"
            details = {"type": "cancelled", "reason": response.cancel_reason} if status == "cancelled" else None
            await self.send(
                {
                    "type": "response.done",
                    "response": {
                        **base,
                        "status": status,
                        "status_details": details,
                        "output": [item],
                        "output_modalities": ["text"] if turn.text_only else ["audio"],
                        "max_output_tokens": "inf",
                        "audio": {"output": {"format": self.output_format, "voice": self._voice}},
                        "usage": self._usage(item),
                        "metadata": None,
                    },
                }
            )
            await self.send(
                {
                    "type": "rate_limits.updated",
                    "rate_limits": [
                        {"name": "requests", "limit": 10000, "remaining": 9999, "reset_seconds": 0.006},
                        {"name": "tokens", "limit": 2000000, "remaining": 1999000, "reset_seconds": 0.03},
                    ],
                }
            )
        except ConnectionClosed:
            pass
        finally:
            if self._response is response:
                self._response = None

    @property
    def _voice(self) -> str:
        return self.session["audio"]["output"].get("voice", "alloy")

    def _usage(self, item: dict[str, Any]) -> dict[str, Any]:
        audio_ms = self.items[item["id"]].audio_ms if item["id"] in self.items else 0.0
        return response_usage(self._input_ms, audio_ms)

    async def _function_call(self, response: _Response) -> dict[str, Any]:
        name, arguments = response.turn.tool_call or ("", {})
        item_id, call_id = self._id("item"), self._id("call")
        args = json.dumps(arguments)
        item: dict[str, Any] = {
            "id": item_id,
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": name,
            "call_id": call_id,
            "arguments": "",
        }
        ids = {"response_id": response.id, "item_id": item_id, "output_index": 0, "call_id": call_id}
        await self.send(
            {"type": "response.output_item.added", "response_id": response.id, "output_index": 0, "item": item}
        )
        previous = self._last_item_id
        self.items[item_id] = _Item(item_id, "assistant", "function_call")
        self._last_item_id = item_id
        await self.send({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        for start in range(0, len(args), 16):
            await self.send(
                {"type": "response.function_call_arguments.delta", **ids, "delta": args[start : start + 16]}
            )
        await self.send({"type": "response.function_call_arguments.done", **ids, "name": name, "arguments": args})
        item = {**item, "status": "completed", "arguments": args}
        self._follow_up[call_id] = response.turn
        await self.send(
            {"type": "response.output_item.done", "response_id": response.id, "output_index": 0, "item": item}
        )
        await self.send({"type": "conversation.item.done", "previous_item_id": previous, "item": item})
        return item

    async def _speak(self, response: _Response) -> dict[str, Any]:
        turn = response.turn
        text = turn.reply if isinstance(turn.reply, str) else self.server.default_reply
        item_id = self._id("item")
        part_type = "output_text" if turn.text_only else "output_audio"
        item: dict[str, Any] = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        record = _Item(item_id, "assistant", "message")
        ids = {"response_id": response.id, "item_id": item_id, "output_index": 0, "content_index": 0}
        await self.send(
            {"type": "response.output_item.added", "response_id": response.id, "output_index": 0, "item": item}
        )
        previous = self._last_item_id
        self.items[item_id] = record
        self._last_item_id = item_id
        await self.send({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        part = {"type": "text", "text": ""} if turn.text_only else {"type": "audio", "transcript": ""}
        await self.send({"type": "response.content_part.added", **ids, "part": part})

        words = text.split(" ")
        said: list[str] = []
        if turn.text_only:
            for i, word in enumerate(words):
                if response.cancelled.is_set():
                    break
                delta = word if i == 0 else " " + word
                said.append(delta)
                await self.send({"type": "response.output_text.delta", **ids, "delta": delta})
            spoken = "".join(said)
            await self.send({"type": "response.output_text.done", **ids, "text": spoken})
            done_part: dict[str, Any] = {"type": "text", "text": spoken}
        else:
            spoken = await self._stream_audio(response, record, ids, words, said)
            await self.send({"type": "response.output_audio.done", **ids})
            await self.send({"type": "response.output_audio_transcript.done", **ids, "transcript": spoken})
            done_part = {"type": "audio", "transcript": spoken}
        await self.send({"type": "response.content_part.done", **ids, "part": done_part})
        status = "incomplete" if response.cancelled.is_set() else "completed"
        content_key = "text" if turn.text_only else "transcript"
        item = {**item, "status": status, "content": [{"type": part_type, content_key: spoken}]}
        await self.send(
            {"type": "response.output_item.done", "response_id": response.id, "output_index": 0, "item": item}
        )
        await self.send({"type": "conversation.item.done", "previous_item_id": previous, "item": item})
        return item

    async def _stream_audio(
        self, response: _Response, record: _Item, ids: dict[str, Any], words: list[str], said: list[str]
    ) -> str:
        turn = response.turn
        fmt = self.output_format
        text = " ".join(words)
        audio = turn.reply_audio
        if audio is None:
            audio = self.server.audio_for_text(text, fmt)
        chunk = max(1, int(self.server.chunk_ms * _bytes_per_ms(fmt)))
        chunk -= chunk % (2 if fmt["type"] == "audio/pcm" else 1)
        chunks = [audio[i : i + chunk] for i in range(0, len(audio), chunk)] or [b""]
        # Spread the transcript over the audio so a cancelled reply has a partial transcript.
        per_chunk = max(1, math.ceil(len(words) / len(chunks)))
        word_iter = iter(words)
        for n, data in enumerate(chunks):
            if response.cancelled.is_set():
                break
            if turn.drop_after is not None and n >= turn.drop_after:
                await self.drop()
                raise ConnectionClosed(None, None)
            if turn.stall_after is not None and n == turn.stall_after:
                await self._wait_released(response, None)
                if response.cancelled.is_set():
                    break
            record.audio_ms += len(data) / _bytes_per_ms(fmt)
            await self.send({"type": "response.output_audio.delta", **ids, "delta": base64.b64encode(data).decode()})
            for word in itertools.islice(word_iter, per_chunk):
                delta = word if not said else " " + word
                said.append(delta)
                await self.send({"type": "response.output_audio_transcript.delta", **ids, "delta": delta})
            if self.server.paced:
                await asyncio.sleep(len(data) / _bytes_per_ms(fmt) / 1000)
        return "".join(said)

    # -- lifecycle ----------------------------------------------------------------------------

    async def run(self) -> None:
        await self.send({"type": "session.created", "session": copy.deepcopy(self.session)})
        try:
            while True:
                await self.reading.wait()
                message = await self.ws.recv()
                try:
                    event = json.loads(message)
                    if not isinstance(event, dict):
                        raise ValueError("not an object")
                except ValueError:
                    await self.send_error("Invalid JSON in client event.", code="invalid_json")
                    continue
                self.received.append(event)
                self.server._notify()
                await self.handle(event)
                self.server._notify()
        except ConnectionClosed:
            pass
        finally:
            if self._response is not None:
                self._response.cancelled.set()
            self.closed.set()
            self.server._notify()


class FakeRealtime:
    """The server. Use as an async context manager (or `start()`/`stop()`); `url` is what the SDK's
    `websocket_base_url` should be."""

    def __init__(
        self,
        script: Iterable[Turn] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        paced: bool = False,
        chunk_ms: int = 100,
        ms_per_char: float = 60.0,
        vad_rms_threshold: int = 500,
        vad_start_ms: int = 60,
        default_reply: str = DEFAULT_REPLY,
        audio_for_text: Callable[[str, dict[str, Any]], bytes] | None = None,
        require_auth: bool = True,
        line_delay: float = 0.0,
    ) -> None:
        self.script = list(script)
        self.line_delay = line_delay  # seconds before a quoted line (the greeting...) starts; inf = never
        self.host = host
        self.port = port
        self.paced = paced
        self.chunk_ms = chunk_ms
        self.ms_per_char = ms_per_char
        self.vad_rms_threshold = vad_rms_threshold
        self.vad_start_ms = vad_start_ms
        self.default_reply = default_reply
        self._audio_for_text = audio_for_text
        self.require_auth = require_auth
        self.connections: list[FakeConnection] = []
        self.rejected: list[tuple[int, str]] = []
        self._server: Server | None = None
        self._changed: asyncio.Condition | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/v1"

    @property
    def connection(self) -> FakeConnection:
        """The latest connection."""
        if not self.connections:
            raise LookupError("No client has connected yet.")
        return self.connections[-1]

    def audio_for_text(self, text: str, fmt: dict[str, Any]) -> bytes:
        if self._audio_for_text is not None:
            return self._audio_for_text(text, fmt)
        return tone(min(max(len(text) * self.ms_per_char, 200), 20000), fmt)

    async def start(self) -> FakeRealtime:
        self._changed = asyncio.Condition()
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._check_request,
            max_size=16 * 1024 * 1024,
            compression=None,
        )
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FakeRealtime:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _notify(self) -> None:
        if self._changed is None:
            return
        changed = self._changed

        async def notify() -> None:
            async with changed:
                changed.notify_all()

        asyncio.ensure_future(notify())  # noqa: RUF006 - fire and forget; waiters re-check their predicate

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait (without polling) until `predicate()` holds; it is re-checked after every client event."""
        assert self._changed is not None, "start the server first"  # noqa: S101
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path)
        if path.path.rstrip("/") != "/v1/realtime":
            return self._reject(connection, HTTPStatus.NOT_FOUND, f"Unknown path {path.path}")
        if not parse_qs(path.query).get("model"):
            return self._reject(connection, HTTPStatus.BAD_REQUEST, "Missing required query parameter: model")
        auth = request.headers.get("Authorization", "")
        if self.require_auth and not (auth.startswith("Bearer ") and len(auth) > len("Bearer ")):
            return self._reject(connection, HTTPStatus.UNAUTHORIZED, "Missing bearer authentication in header")
        return None

    def _reject(self, connection: ServerConnection, status: HTTPStatus, message: str) -> Response:
        self.rejected.append((status.value, message))
        return connection.respond(status, message + "\n")

    async def _handle(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path).query) if ws.request else {}
        model = query.get("model", ["gpt-realtime"])[0]
        conn = FakeConnection(self, ws, model, list(self.script))
        self.connections.append(conn)
        self._notify()
        if ws.request and ws.request.headers.get("OpenAI-Beta", "").startswith("realtime"):
            # The beta protocol is gone; the real server refuses the beta shape the same way.
            await conn.send_error(
                "The Realtime beta API shape is no longer supported; remove the OpenAI-Beta header.",
                code="beta_api_shape_disabled",
            )
            await ws.close(1008, "beta shape disabled")
            conn.closed.set()
            return
        await conn.run()


def load_script(path: str | Path) -> list[Turn]:
    """Read a script from JSON: a list of objects with the `Turn` fields (tool_call as {name, arguments})."""
    data = json.loads(Path(path).read_text())
    return [Turn.from_dict(turn) for turn in data]


async def _serve_forever(args: argparse.Namespace) -> None:
    script = load_script(args.script) if args.script else []
    fake = FakeRealtime(script, host=args.host, port=args.port, paced=args.paced, chunk_ms=args.chunk_ms)
    async with fake:
        print(f"fake OpenAI Realtime listening on {fake.url} (websocket_base_url)", flush=True)
        await asyncio.Future()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--script", help="JSON file: a list of turns {transcript, reply, tool_call{name, arguments}}")
    parser.add_argument("--paced", action="store_true", help="send reply audio in real time, not as fast as possible")
    parser.add_argument("--chunk-ms", type=int, default=100, help="audio per response.output_audio.delta")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args))


if __name__ == "__main__":
    main()
