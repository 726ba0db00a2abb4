"""Caller speech for tests and simulations: text → espeak-ng → μ-law 8 kHz in 20 ms frames, the way a
Twilio media stream carries it.

Synthetic speech is clean and robotic; recognisers do worse on it than on people over a phone (see
shared/protocols.md D), so tests built on it assert coarse facts, not exact transcripts.
"""

from __future__ import annotations

from voice.audio import MULAW_8K, PCM16_8K, AudioFormat, convert, silence, split_frames
from voice.tts import Synthesizer, TTSVoice

_synth = Synthesizer(cache_size=256, cache_max_chars=400)


def caller_audio(
    text: str,
    *,
    voice: TTSVoice | None = None,
    fmt: AudioFormat = MULAW_8K,
    lead_ms: int = 0,
    trail_ms: int = 0,
) -> bytes:
    """`text` spoken by espeak-ng in `fmt` (μ-law 8 kHz by default), with optional silence around it."""
    speech = _synth.synthesize_blocking(text, fmt, voice=voice)
    return silence(lead_ms, fmt) + speech + silence(trail_ms, fmt)


async def acaller_audio(
    text: str,
    *,
    voice: TTSVoice | None = None,
    fmt: AudioFormat = MULAW_8K,
    lead_ms: int = 0,
    trail_ms: int = 0,
) -> bytes:
    """`caller_audio` for async code (does not block the event loop while espeak-ng runs)."""
    speech = await _synth.synthesize(text, fmt, voice=voice)
    return silence(lead_ms, fmt) + speech + silence(trail_ms, fmt)


def caller_frames(
    text: str, *, voice: TTSVoice | None = None, lead_ms: int = 0, trail_ms: int = 0, frame_ms: int = 20
) -> list[bytes]:
    """`text` as μ-law 8 kHz frames of `frame_ms` (160 bytes for 20 ms), the last one padded with silence."""
    audio = caller_audio(text, voice=voice, lead_ms=lead_ms, trail_ms=trail_ms)
    return list(split_frames(audio, MULAW_8K.bytes_for_ms(frame_ms)))


def through_phone(pcm: bytes, rate: int) -> bytes:
    """What a PCM16 recording sounds like after a phone call: down to 8 kHz, G.711 μ-law, and back up to
    `rate` as our receiving side does (the recogniser hears this)."""
    src = AudioFormat("pcm16", rate)
    mulaw = convert(pcm, src, MULAW_8K)
    return convert(convert(mulaw, MULAW_8K, PCM16_8K), PCM16_8K, src)
