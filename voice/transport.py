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
