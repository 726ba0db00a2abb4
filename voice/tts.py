"""Offline speech synthesis with espeak-ng, in the audio format a transport needs.

espeak-ng writes a 22.05 kHz PCM16 WAV to stdout; we parse it and resample to μ-law 8 kHz (Twilio) or
PCM16 at a stated rate (browser, recogniser). Fixed phrases (greetings, prompts) are cached in a small LRU.
`stream()` splits a reply into sentences and yields each one's audio as soon as it exists, synthesising the
next sentence while the caller hears the current one, so the first audio goes out after one short
synthesis instead of the whole reply's.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import subprocess
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass

from voice.audio import AudioFormat, convert, parse_wav

ESPEAK_INSTALL_HINT = (
    "espeak-ng is needed for the offline voice engine's speech. Install it with "
    "`apt-get install espeak-ng` (Debian/Ubuntu) or `brew install espeak-ng` (macOS), "
    "or pass the binary's path as Synthesizer(binary=...)."
)
# Sentence ends, then long-clause breaks: a first chunk should be short so the caller hears us quickly.
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")
_CLAUSE_BREAK = re.compile(r"(?<=,)\s+")


class TTSUnavailable(RuntimeError):
    """espeak-ng is not installed (or not executable). The message says how to install it."""


class TTSError(RuntimeError):
    """espeak-ng ran but failed or produced no audio."""


@dataclass(frozen=True)
class TTSVoice:
    """An espeak-ng voice (`en-us`, or with a variant: `en-us+f3`), speed in words per minute, pitch 0–99."""

    name: str = "en-us"
    rate: int = 165
    pitch: int = 50

    def args(self) -> list[str]:
        return ["-v", self.name, "-s", str(self.rate), "-p", str(self.pitch)]


def split_sentences(text: str, *, first_max_chars: int = 60) -> list[str]:
    """Split a reply into sentences; a long first sentence is split once more at a comma so that the
    first chunk is quick to synthesise."""
    parts = [p.strip() for p in _SENTENCE_END.split(text.strip()) if p.strip()]
    if parts and len(parts[0]) > first_max_chars:
        head = _CLAUSE_BREAK.split(parts[0], maxsplit=1)
        if len(head) == 2 and len(head[0]) >= 12:
            parts[0:1] = head
    return parts


def find_espeak(binary: str | None = None) -> str:
    """The espeak-ng executable to use; raises `TTSUnavailable` when there is none."""
    path = shutil.which(binary or "espeak-ng")
    if path is None:
        raise TTSUnavailable(f"{binary or 'espeak-ng'} was not found. {ESPEAK_INSTALL_HINT}")
    return path


class Synthesizer:
    """Text → audio in a given `AudioFormat`. One per process is enough; it is safe to share between calls.

    `cache_size` phrases up to `cache_max_chars` long are kept (keyed by text, voice and format):
    greetings and fixed prompts then cost nothing after the first call.
    """

    ESPEAK_RATE = 22050

    def __init__(
        self,
        voice: TTSVoice | None = None,
        *,
        binary: str | None = None,
        cache_size: int = 128,
        cache_max_chars: int = 240,
    ) -> None:
        self.voice = voice or TTSVoice()
        self._binary_name = binary
        self._binary: str | None = None
        self.cache_size = cache_size
        self.cache_max_chars = cache_max_chars
        self._cache: OrderedDict[tuple[str, TTSVoice, AudioFormat], bytes] = OrderedDict()
        self.cache_hits = 0
        self.cache_misses = 0

    @property
    def binary(self) -> str:
        if self._binary is None:
            self._binary = find_espeak(self._binary_name)
        return self._binary

    def _command(self, voice: TTSVoice) -> list[str]:
        # Text goes through stdin: no argument parsing surprises with text starting with "-".
        return [self.binary, "--stdout", *voice.args()]

    def _cached(self, key: tuple[str, TTSVoice, AudioFormat]) -> bytes | None:
        audio = self._cache.get(key)
        if audio is not None:
            self._cache.move_to_end(key)
            self.cache_hits += 1
        return audio

    def _store(self, key: tuple[str, TTSVoice, AudioFormat], audio: bytes) -> None:
        self.cache_misses += 1
        if self.cache_size <= 0 or len(key[0]) > self.cache_max_chars:
            return
        self._cache[key] = audio
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def _decode(self, wav: bytes, fmt: AudioFormat) -> bytes:
        pcm, rate = parse_wav(wav)
        return convert(pcm, AudioFormat("pcm16", rate), fmt)

    async def synthesize(self, text: str, fmt: AudioFormat, *, voice: TTSVoice | None = None) -> bytes:
        """The whole text as audio in `fmt`. Raises `TTSUnavailable` or `TTSError`."""
        voice = voice or self.voice
        text = " ".join(text.split())
        if not text:
            return b""
        key = (text, voice, fmt)
        cached = self._cached(key)
        if cached is not None:
            return cached
        try:
            proc = await asyncio.create_subprocess_exec(
                *self._command(voice),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except (FileNotFoundError, PermissionError) as exc:
            raise TTSUnavailable(f"Cannot run {self.binary}: {exc}. {ESPEAK_INSTALL_HINT}") from exc
        try:
            wav, err = await proc.communicate(text.encode())
        except BaseException:  # cancelled (e.g. the caller barged in): don't leave espeak-ng running
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())
            raise
        audio = self._check_and_decode(proc.returncode, wav, err, fmt)
        self._store(key, audio)
        return audio

    def synthesize_blocking(self, text: str, fmt: AudioFormat, *, voice: TTSVoice | None = None) -> bytes:
        """`synthesize` for synchronous code (management commands, test setup)."""
        voice = voice or self.voice
        text = " ".join(text.split())
        if not text:
            return b""
        key = (text, voice, fmt)
        cached = self._cached(key)
        if cached is not None:
            return cached
        try:
            done = subprocess.run(self._command(voice), input=text.encode(), capture_output=True, check=False)  # noqa: S603
        except (FileNotFoundError, PermissionError) as exc:
            raise TTSUnavailable(f"Cannot run {self.binary}: {exc}. {ESPEAK_INSTALL_HINT}") from exc
        audio = self._check_and_decode(done.returncode, done.stdout, done.stderr, fmt)
        self._store(key, audio)
        return audio

    def _check_and_decode(self, returncode: int | None, wav: bytes, err: bytes, fmt: AudioFormat) -> bytes:
        if returncode != 0:
            raise TTSError(f"espeak-ng exited with {returncode}: {err.decode(errors='replace').strip()}")
        try:
            audio = self._decode(wav, fmt)
        except ValueError as exc:
            raise TTSError(f"espeak-ng produced unreadable audio: {exc}") from exc
        if not audio:
            raise TTSError("espeak-ng produced no audio.")
        return audio

    async def stream(self, text: str, fmt: AudioFormat, *, voice: TTSVoice | None = None) -> AsyncIterator[bytes]:
        """Yield the reply's audio sentence by sentence. The next sentence is synthesised while the
        current one is being played, so only the first sentence's synthesis delays the caller."""
        sentences = split_sentences(text)
        if not sentences:
            return
        next_task: asyncio.Task[bytes] | None = asyncio.ensure_future(self.synthesize(sentences[0], fmt, voice=voice))
        try:
            for i in range(len(sentences)):
                assert next_task is not None  # noqa: S101
                current = next_task
                next_task = (
                    asyncio.ensure_future(self.synthesize(sentences[i + 1], fmt, voice=voice))
                    if i + 1 < len(sentences)
                    else None
                )
                yield await current
        finally:
            if next_task is not None:
                next_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, TTSError):
                    await next_task

    def cache_clear(self) -> None:
        self._cache.clear()


_default: Synthesizer | None = None


def get_synthesizer() -> Synthesizer:
    """The process-wide synthesizer (its phrase cache is shared by all calls)."""
    global _default
    if _default is None:
        _default = Synthesizer()
    return _default
