"""Audio helpers for the voice pipeline: G.711 μ-law ⇄ PCM16, streaming resampling, 20 ms framing,
energy, silence, base64 for Twilio frames and WAV files.

Formats are explicit (`AudioFormat`): Twilio speaks μ-law 8 kHz, OpenAI Realtime PCM16 24 kHz or μ-law,
PocketSphinx wants PCM16 16 kHz, espeak-ng writes PCM16 22.05 kHz. Everything here is a thin layer over
the C functions of `audioop` (stdlib up to 3.12, the `audioop-lts` drop-in from 3.13), because these
run about 50 times a second per call.
"""

from __future__ import annotations

import base64
import io
import math
import struct
import warnings
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

with warnings.catch_warnings():
    # Deprecated in 3.11, removed in 3.13 where `audioop-lts` provides the same module.
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

Encoding = Literal["mulaw", "pcm16"]

FRAME_MS = 20
MULAW_SILENCE = b"\xff"  # lin2ulaw(0)
PCM16_SILENCE = b"\x00\x00"


@dataclass(frozen=True)
class AudioFormat:
    """Mono audio: `mulaw` (8-bit G.711 μ-law) or `pcm16` (signed 16-bit little-endian) at a sample rate."""

    encoding: Encoding
    sample_rate: int

    def __post_init__(self) -> None:
        if self.encoding not in ("mulaw", "pcm16"):
            raise ValueError(f"Unknown audio encoding {self.encoding!r}; expected 'mulaw' or 'pcm16'.")
        if self.sample_rate <= 0:
            raise ValueError(f"Sample rate must be positive, got {self.sample_rate}.")

    @property
    def sample_width(self) -> int:
        return 1 if self.encoding == "mulaw" else 2

    @property
    def bytes_per_second(self) -> int:
        return self.sample_rate * self.sample_width

    def bytes_for_ms(self, ms: float) -> int:
        """Whole samples' worth of bytes for `ms` milliseconds."""
        return int(self.sample_rate * ms / 1000) * self.sample_width

    def duration_ms(self, nbytes: int) -> float:
        return nbytes * 1000 / self.bytes_per_second

    @property
    def frame_bytes(self) -> int:
        """Bytes in one 20 ms frame (160 for μ-law 8 kHz, 960 for PCM16 24 kHz)."""
        return self.bytes_for_ms(FRAME_MS)

    @property
    def silence_byte(self) -> bytes:
        return MULAW_SILENCE if self.encoding == "mulaw" else b"\x00"

    def __str__(self) -> str:
        return f"{self.encoding}/{self.sample_rate}"


MULAW_8K = AudioFormat("mulaw", 8000)
PCM16_8K = AudioFormat("pcm16", 8000)
PCM16_16K = AudioFormat("pcm16", 16000)
PCM16_24K = AudioFormat("pcm16", 24000)


# -- codecs --------------------------------------------------------------------------------------


def mulaw_to_pcm16(data: bytes) -> bytes:
    """G.711 μ-law → PCM16 (same rate, twice the bytes)."""
    return audioop.ulaw2lin(data, 2)


def pcm16_to_mulaw(pcm: bytes) -> bytes:
    """PCM16 → G.711 μ-law (same rate, half the bytes). A trailing odd byte is dropped."""
    if len(pcm) % 2:
        pcm = pcm[:-1]
    return audioop.lin2ulaw(pcm, 2)


class Resampler:
    """Streaming PCM16 mono resampler that carries `audioop.ratecv` state across chunks.

    Feed chunks of any size in order; the output of consecutive chunks joins without clicks. Chunk output
    lengths vary by a sample or two (the first 20 ms chunk 8k→24k gives 956 bytes, then 960): don't rely on
    exact sizes. `ratecv` interpolates linearly without a low-pass filter, which is fine for speech going
    up in rate or down from a band-limited source (telephone audio) and a little harsh otherwise.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError("Sample rates must be positive.")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._state: tuple | None = None
        self._odd = b""

    def process(self, pcm: bytes) -> bytes:
        if self._odd:
            pcm = self._odd + pcm
            self._odd = b""
        if len(pcm) % 2:
            pcm, self._odd = pcm[:-1], pcm[-1:]
        if self.in_rate == self.out_rate or not pcm:
            return pcm
        out, self._state = audioop.ratecv(pcm, 2, 1, self.in_rate, self.out_rate, self._state)
        return out

    def reset(self) -> None:
        """Forget the history (call between unrelated streams, e.g. after a barge-in flush)."""
        self._state = None
        self._odd = b""


def resample(pcm: bytes, in_rate: int, out_rate: int) -> bytes:
    """Resample a whole PCM16 mono buffer."""
    return Resampler(in_rate, out_rate).process(pcm)


class AudioConverter:
    """Streaming conversion between two `AudioFormat`s (decode → resample → encode), state kept across
    chunks. With equal formats it passes bytes through untouched."""

    def __init__(self, src: AudioFormat, dst: AudioFormat) -> None:
        self.src = src
        self.dst = dst
        self._resampler = Resampler(src.sample_rate, dst.sample_rate)

    @property
    def passthrough(self) -> bool:
        return self.src == self.dst

    def convert(self, data: bytes) -> bytes:
        if self.passthrough:
            return data
        pcm = mulaw_to_pcm16(data) if self.src.encoding == "mulaw" else data
        pcm = self._resampler.process(pcm)
        return pcm16_to_mulaw(pcm) if self.dst.encoding == "mulaw" else pcm

    def reset(self) -> None:
        self._resampler.reset()


def convert(data: bytes, src: AudioFormat, dst: AudioFormat) -> bytes:
    """Convert a whole buffer from one format to another."""
    return AudioConverter(src, dst).convert(data)


# -- framing and base64 -------------------------------------------------------------------------


def silence(ms: float, fmt: AudioFormat = MULAW_8K) -> bytes:
    """`ms` milliseconds of digital silence in `fmt` (0xFF bytes for μ-law, zeros for PCM16)."""
    return fmt.silence_byte * fmt.bytes_for_ms(ms)


def split_frames(data: bytes, frame_bytes: int = 160, *, pad: bytes | None = MULAW_SILENCE) -> Iterator[bytes]:
    """Cut `data` into frames of `frame_bytes` (default: 20 ms of μ-law 8 kHz). The short last piece is
    padded with the `pad` byte (μ-law silence by default; pass b"\\x00" for PCM16) or, with `pad=None`,
    yielded short."""
    for start in range(0, len(data), frame_bytes):
        frame = data[start : start + frame_bytes]
        if len(frame) < frame_bytes and pad is not None:
            frame += pad * (frame_bytes - len(frame))
        yield frame


class FrameBuffer:
    """Collects bytes arriving in arbitrary chunks and hands them out in fixed-size frames."""

    def __init__(self, frame_bytes: int) -> None:
        if frame_bytes <= 0:
            raise ValueError("frame_bytes must be positive.")
        self.frame_bytes = frame_bytes
        self._buf = bytearray()

    def push(self, data: bytes) -> list[bytes]:
        self._buf += data
        n = len(self._buf) // self.frame_bytes * self.frame_bytes
        if not n:
            return []
        chunk = bytes(self._buf[:n])
        del self._buf[:n]
        return [chunk[i : i + self.frame_bytes] for i in range(0, n, self.frame_bytes)]

    def flush(self, pad: bytes | None = None) -> bytes | None:
        """The leftover partial frame (padded to a full frame with `pad` if given), or None if empty."""
        if not self._buf:
            return None
        rest = bytes(self._buf)
        self._buf.clear()
        if pad is not None:
            rest += pad * (self.frame_bytes - len(rest))
        return rest

    def clear(self) -> None:
        self._buf.clear()

    def __len__(self) -> int:
        return len(self._buf)


def b64encode_audio(data: bytes) -> str:
    """Raw audio → base64 text, as Twilio `media.payload` and OpenAI `input_audio_buffer.append` expect."""
    return base64.b64encode(data).decode("ascii")


def b64decode_audio(payload: str) -> bytes:
    return base64.b64decode(payload)


# -- energy --------------------------------------------------------------------------------------


def rms(data: bytes, fmt: AudioFormat) -> int:
    """Root-mean-square amplitude on the 16-bit scale (0–32767), whatever the encoding."""
    if fmt.encoding == "mulaw":
        data = mulaw_to_pcm16(data)
    elif len(data) % 2:
        data = data[:-1]
    if not data:
        return 0
    return audioop.rms(data, 2)


def dbfs(data: bytes, fmt: AudioFormat) -> float:
    """Level in dB relative to full scale; -inf for digital silence."""
    level = rms(data, fmt)
    return 20 * math.log10(level / 32768) if level else -math.inf


def is_silent(data: bytes, fmt: AudioFormat, threshold: int = 300) -> bool:
    """True when the RMS is below `threshold` (on the 16-bit scale; ~-40 dBFS by default)."""
    return rms(data, fmt) < threshold


# -- WAV -----------------------------------------------------------------------------------------


def parse_wav(data: bytes) -> tuple[bytes, int]:
    """Parse a PCM16 WAV held in memory → (mono PCM16, sample rate).

    Written by hand rather than with `wave` because streamed WAVs (espeak-ng `--stdout`) carry a
    placeholder length (0x7ffff000) in their headers; the data runs to the end of the buffer instead.
    Stereo is mixed down to mono.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("Not a RIFF/WAVE file.")
    pos = 12
    channels = rate = width = 0
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = pos + 8
        if chunk_id == b"fmt ":
            audio_format, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if audio_format not in (1, 0xFFFE):
                raise ValueError(f"Unsupported WAV encoding {audio_format}; only PCM is read.")
            width = bits // 8
        elif chunk_id == b"data":
            if not rate:
                raise ValueError("WAV data chunk before its fmt chunk.")
            if width != 2:
                raise ValueError(f"Only 16-bit WAV is supported, got {width * 8}-bit.")
            pcm = data[body : body + size]  # a placeholder size simply runs to the end
            pcm = pcm[: len(pcm) // (2 * channels) * 2 * channels]
            if channels == 2:
                pcm = audioop.tomono(pcm, 2, 0.5, 0.5)
            elif channels != 1:
                raise ValueError(f"Only mono or stereo WAV is supported, got {channels} channels.")
            return pcm, rate
        pos = body + size + (size & 1)
    raise ValueError("WAV file has no data chunk.")


def read_wav(source: str | Path | BinaryIO) -> tuple[bytes, int]:
    """Read a PCM16 WAV file → (mono PCM16, sample rate)."""
    if isinstance(source, str | Path):
        return parse_wav(Path(source).read_bytes())
    return parse_wav(source.read())


def wav_bytes(pcm: bytes, sample_rate: int) -> bytes:
    """Mono PCM16 → a complete WAV file in memory."""
    out = io.BytesIO()
    write_wav(out, pcm, sample_rate)
    return out.getvalue()


def write_wav(target: str | Path | BinaryIO, pcm: bytes, sample_rate: int) -> None:
    """Write mono PCM16 as a WAV file (μ-law audio: convert with `mulaw_to_pcm16` first)."""
    with wave.open(str(target) if isinstance(target, Path) else target, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm)
