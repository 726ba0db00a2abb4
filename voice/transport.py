"""The seam between a VoiceSession and the connection that carries a call's audio.

A transport adapts one wire protocol — Twilio Media Streams (μ-law 8 kHz, base64 JSON frames) or the
browser's `/ws/voice/stream/` (binary PCM16 + JSON control) — to the session. The consumer that owns
the WebSocket implements `Transport` and calls the session's inputs:

    session = VoiceSession(shop=shop, transport=transport, call_sid=..., channel="phone", caller_number=...)
    await session.start()                       # CallLog opened, engine connected, greeting spoken
    await session.receive_audio(pcm_or_ulaw)    # caller audio in transport.input_format (bytes)
    await session.receive_audio_b64(payload)    # same, still base64 (Twilio): passed through untouched to
                                                # an engine that takes this format (OpenAI Realtime, audio/pcmu)
    await session.receive_text("...")           # typed fallback (browser)
    await session.mark_played("name")           # the far end has played our audio up to this mark
    await session.dtmf("0")                     # a key press ("0" = a person)
    await session.stop(reason="caller_hung_up") # the caller or the network ended the call; idempotent

The session answers through the transport below. Audio is sent as soon as it exists; the far end
(Twilio, the browser's player) buffers and plays it in real time and echoes marks as it goes, which
is how the session knows what the caller has actually heard (barge-in truncation, hang-up after the
goodbye has played).

The rest of the session's surface (voice/session/core.py):

    VoiceSession(*, shop, transport, call_sid, channel, caller_number="", engine=None, clock=timezone.now,
                 silence_timeout=8.0, silence_reprompts=2, max_call_seconds=None (shop's), filler_after=1.5,
                 response_timeout=5.0, connect_timeout=1.5, mark_slack=2.0, synthesizer=None,
                 monotonic=time.monotonic)
    session.state           # SessionState: idle, listening, processing, speaking, transferring, ended
    session.engine_name     # "openai" or "local" (changes to "local" if OpenAI fails mid-call)
    session.ended           # asyncio.Event, set once the call is over and the CallLog closed
    await session.wait_ended(timeout=None)  # True once ended, False on timeout
    session.call            # the CallLog (after start)

`engine=None` follows the shop (voice.engines.engine_name_for); "openai" without OPENAI_API_KEY is
"local". The timeouts are constructor parameters so tests can run in milliseconds.

What a transport must do:
- Formats: `input_format`/`output_format` are fixed for the call. μ-law 8 kHz (Twilio) gets pass-through
  with the openai engine; PCM16 at any rate is converted (Realtime wants 24 kHz, PocketSphinx 16 kHz).
  `receive_audio_b64` is the cheap path for a transport that already holds base64 (Twilio).
- Marks: echo every mark, in order, once the audio queued before it has been played (Twilio does this
  itself; a browser player must do it when it reaches that point). Unknown or late marks are ignored.
  A transport that cannot echo marks still works: the session then assumes real-time playback from the
  moment it sent the audio (a mark still unechoed 1 s after its audio should have played counts as
  played) and waits `mark_slack` seconds longer than the audio lasts before hanging up.
- `clear()`: drop everything queued at the far end now (Twilio `clear`, browser: stop and flush the
  player). Marks dropped by a clear may still be echoed (Twilio does); that is fine.
- `close()`: the session is done (goodbye played, transfer line played, or it failed). Close the media
  connection; what follows is decided by CallLog.outcome (`transferred` → put the caller through).
  The session calls close() exactly once, and never after `stop()` (the far end is already gone).
- `send_event()`: {"type": "state", "state"}, {"type": "transcript", "role": "caller"|"assistant",
  "text"}, {"type": "engine", "engine", "reason"?}, {"type": "metrics", "turn", "source", "engine",
  "response_ms", "asr_ms", "model_ms", "tool_ms", "tts_ms", "speech_ms", "asr_decode_ms", "late_ms",
  "filler"} (see voice/session/core.py for what each measures). A browser shows them; Twilio ignores them.
- Errors: a transport method that raises ends the call (outcome failed, unless one is set).
- Concurrency: call the session's inputs from one task (the consumer's receive loop), in arrival order;
  they return quickly (recognition, the model and speech run in the session's own tasks).
- Start: a consumer may run `start()` in its own task and feed input meanwhile. Input that arrives while
  start() is still opening the CallLog and connecting the engine is not dropped: the input call waits
  until start() is done, then goes to the engine, so words typed (or a key pressed, or the first
  audio) in the call's first moment are kept, in order. Input before start() is called is ignored.

voice/testing/transport.py has a FakeTransport that does all this for tests.
"""

from __future__ import annotations

from typing import Any, Protocol

from voice.audio import AudioFormat


class Transport(Protocol):
    name: str  # "twilio" or "browser": logged and stored with metrics
    input_format: AudioFormat  # what the session's receive_audio gets
    output_format: AudioFormat  # what the session must hand to send_audio

    async def send_audio(self, audio: bytes) -> None:
        """Queue `audio` (output_format, any length) for playback at the far end."""

    async def send_audio_b64(self, payload: str) -> None:
        """The same, already base64-encoded (a Realtime delta in the transport's own format)."""

    async def send_mark(self, name: str) -> None:
        """Ask the far end to echo `name` once everything queued before it has been played."""

    async def clear(self) -> None:
        """Barge-in: drop everything queued at the far end now (Twilio `clear`, browser flush)."""

    async def send_event(self, event: dict[str, Any]) -> None:
        """Tell a watching UI what happens: {"type": "transcript"|"state"|"metrics"|"engine", ...}.

        Twilio has no such channel; its transport ignores these.
        """

    async def close(self) -> None:
        """End the media connection. The CallLog's outcome says what follows (telephony reads it:
        `transferred` → dial the shop; anything else → hang up)."""
