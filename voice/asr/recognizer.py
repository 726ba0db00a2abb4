"""Recognition and endpointing: PocketSphinx decoders (shared per model) and the utterance detector."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voice.asr.model import pronunciations
from voice.asr.vocabulary import normalize_text
from voice.audio import PCM16_16K, AudioConverter, AudioFormat

SAMPLE_RATE = 16000


# -- recognition --------------------------------------------------------------------------------


@dataclass
class Transcript:
    text: str
    audio_seconds: float
    decode_seconds: float
    score: float = 0.0

    @property
    def words(self) -> list[str]:
        return self.text.split()

    @property
    def real_time_factor(self) -> float:
        return self.decode_seconds / self.audio_seconds if self.audio_seconds else 0.0


class Recognizer:
    """One PocketSphinx decoder. `model=None` uses the bundled general English LM; otherwise a directory
    from `build_domain_model`. Thread-safe (one utterance at a time); share it through `get_recognizer`."""

    CHUNK_BYTES = 3200  # 0.1 s: the decoder holds the GIL while it works, so feed it in small bites

    def __init__(self, model: Path | str | None = None, *, flat_pass: bool = False, loglevel: str = "FATAL") -> None:
        from pocketsphinx import Decoder

        self.model = Path(model) if model else None
        # PocketSphinx's second "flat lexicon" pass runs inside end_utt(), in one GIL-holding call (~0.25 s
        # for a 6 s utterance with the domain LM, ~0.7 s with the bundled one) after the caller stopped
        # talking. On our evaluation it bought no accuracy (WER 0.443 with, 0.437 without) and cost ~40% of
        # the CPU, so it is off: end_utt() then takes milliseconds.
        config: dict[str, Any] = {"samprate": SAMPLE_RATE, "loglevel": loglevel, "fwdflat": flat_pass}
        if self.model is not None:
            config.update(lm=str(self.model / "domain.lm"), dict=str(self.model / "domain.dict"))
        started = time.perf_counter()
        self._decoder = Decoder(**config)
        self.init_seconds = time.perf_counter() - started
        self._lock = threading.Lock()
        self._grammars: OrderedDict[tuple[str, ...], str] = OrderedDict()
        self._streaming = False
        self._stream_bytes = 0
        self._stream_seconds = 0.0

    def decode(self, pcm: bytes, *, choices: Sequence[str] | None = None) -> Transcript:
        """Recognise one utterance of PCM16 mono 16 kHz. With `choices`, the answer is one of them (as
        normalised words) or "" — a closed-set grammar, far more reliable than open recognition."""
        with self._lock:
            started = time.perf_counter()
            search = self._grammar(choices) if choices else "_default"
            if self._decoder.current_search() != search:
                self._decoder.activate_search(search)
            self._decoder.start_utt()
            for i in range(0, len(pcm), self.CHUNK_BYTES):
                self._decoder.process_raw(pcm[i : i + self.CHUNK_BYTES], False, False)
            self._decoder.end_utt()
            hyp = self._decoder.hyp()
            text = " ".join(w for w in (hyp.hypstr.split() if hyp else []) if not w.startswith(("<", "[", "++")))
            return Transcript(
                text=text,
                audio_seconds=len(pcm) / (2 * SAMPLE_RATE),
                decode_seconds=time.perf_counter() - started,
                score=hyp.best_score if hyp else 0,
            )

    async def adecode(self, pcm: bytes, *, choices: Sequence[str] | None = None) -> Transcript:
        """`decode` in a worker thread, so the event loop keeps serving other calls' audio."""
        return await asyncio.to_thread(self.decode, pcm, choices=choices)

    # -- streaming: recognise while the caller is still talking ---------------------------------
    # `begin()`, `feed()` as the audio arrives, `finish()` when the utterance ends: the decoding is
    # done during the utterance, and only the end of it is left when the caller stops (milliseconds
    # instead of a decode of the whole utterance). Between begin and finish the decoder belongs to
    # that utterance, so a streaming recogniser serves one caller at a time: give each call its own
    # (`Recognizer(model)`: ~16 ms and ~7 MB with a domain LM) rather than the shared `get_recognizer()`.
    def begin(self) -> None:
        with self._lock:
            if self._streaming:
                self._decoder.end_utt()
            if self._decoder.current_search() != "_default":
                self._decoder.activate_search("_default")
            self._decoder.start_utt()
            self._streaming = True
            self._stream_bytes = 0
            self._stream_seconds = 0.0

    def feed(self, pcm: bytes) -> None:
        """More of the utterance (PCM16 mono 16 kHz), in order."""
        with self._lock:
            if not self._streaming:
                raise RuntimeError("feed() before begin()")
            started = time.perf_counter()
            for i in range(0, len(pcm), self.CHUNK_BYTES):
                self._decoder.process_raw(pcm[i : i + self.CHUNK_BYTES], False, False)
            self._stream_bytes += len(pcm)
            self._stream_seconds += time.perf_counter() - started

    def finish(self) -> Transcript:
        """The utterance's transcript; `decode_seconds` counts all the decoding since `begin()`."""
        with self._lock:
            if not self._streaming:
                raise RuntimeError("finish() before begin()")
            started = time.perf_counter()
            self._decoder.end_utt()
            self._streaming = False
            hyp = self._decoder.hyp()
            text = " ".join(w for w in (hyp.hypstr.split() if hyp else []) if not w.startswith(("<", "[", "++")))
            return Transcript(
                text=text,
                audio_seconds=self._stream_bytes / (2 * SAMPLE_RATE),
                decode_seconds=self._stream_seconds + time.perf_counter() - started,
                score=hyp.best_score if hyp else 0,
            )

    def abort(self) -> None:
        """Drop an utterance in progress (the call ended mid-sentence)."""
        with self._lock:
            if self._streaming:
                self._decoder.end_utt()
                self._streaming = False

    def _grammar(self, choices: Sequence[str]) -> str:
        phrases = tuple(sorted({" ".join(normalize_text(c)) for c in choices} - {""}))
        if phrases in self._grammars:
            self._grammars.move_to_end(phrases)
            return self._grammars[phrases]
        missing = {w for p in phrases for w in p.split() if self._decoder.lookup_word(w) is None}
        if missing:
            pron, _ = pronunciations(missing)
            for word, variants in pron.items():
                self._decoder.add_word(word, variants[0], True)
        name = f"choices{len(self._grammars)}-{hashlib.sha1(repr(phrases).encode()).hexdigest()[:8]}"  # noqa: S324
        body = " | ".join(f"( {p} )" for p in phrases)
        self._decoder.add_jsgf_string(name, f"#JSGF V1.0;\ngrammar choices;\npublic <choice> = {body};\n")
        self._grammars[phrases] = name
        return name


class RecognizerPool:
    """One shared `Recognizer` per model per process (a decoder costs ~0.3 s and tens of MB to create);
    the least recently used models are dropped beyond `max_models`."""

    def __init__(self, max_models: int = 8) -> None:
        self.max_models = max_models
        self._recognizers: OrderedDict[str, Recognizer] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model: Path | str | None = None) -> Recognizer:
        key = str(Path(model).resolve()) if model else "<default>"
        with self._lock:
            recognizer = self._recognizers.get(key)
            if recognizer is None:
                recognizer = Recognizer(model)
                self._recognizers[key] = recognizer
                while len(self._recognizers) > self.max_models:
                    self._recognizers.popitem(last=False)
            self._recognizers.move_to_end(key)
            return recognizer

    async def aget(self, model: Path | str | None = None) -> Recognizer:
        return await asyncio.to_thread(self.get, model)

    def __len__(self) -> int:
        return len(self._recognizers)


pool = RecognizerPool()


def get_recognizer(model: Path | str | None = None) -> Recognizer:
    """The process-wide recognizer for `model` (None: the bundled general English model)."""
    return pool.get(model)


# -- endpointing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeechStarted:
    at: float  # seconds since the detector started


@dataclass(frozen=True)
class Utterance:
    start: float
    end: float
    pcm: bytes = field(repr=False)  # PCM16 16 kHz

    @property
    def duration(self) -> float:
        return len(self.pcm) / (2 * SAMPLE_RATE)


class UtteranceDetector:
    """Turns a stream of audio (chunks of any size) into `SpeechStarted` and `Utterance` events; the
    utterances' audio is PCM16 16 kHz, ready for `Recognizer.decode`. Give `input_format=MULAW_8K` to
    feed Twilio frames directly (they are converted, with resampler state kept across frames).

    Built on PocketSphinx's `Endpointer`: speech starts when `ratio` of a `window`-second window is voiced
    and ends when `ratio` of it is not, so both events arrive about `window` seconds late; a longer window
    waits out longer pauses before ending the caller's turn. An utterance longer than `max_seconds` is cut
    (and the rest continues as the next one). `on_speech(pcm)` is called with each piece of an utterance's
    audio as soon as it is collected, and with b"" when the utterance is complete (for recognition while
    the caller is still talking); the pieces of a reported utterance, joined, are its `pcm`."""

    def __init__(
        self,
        *,
        window: float = 0.3,
        ratio: float = 0.9,
        vad_mode: int = 0,
        max_seconds: float = 15.0,
        min_seconds: float = 0.1,
        input_format: AudioFormat = PCM16_16K,
        on_speech: Callable[[bytes], None] | None = None,
    ) -> None:
        from pocketsphinx import Endpointer

        self._converter = AudioConverter(input_format, PCM16_16K)
        self._on_speech = on_speech  # gets each piece of an utterance's audio as it is collected

        self._endpointer = Endpointer(window=window, ratio=ratio, vad_mode=vad_mode, sample_rate=SAMPLE_RATE)
        self.frame_bytes: int = self._endpointer.frame_bytes
        self.max_seconds = max_seconds
        self.min_seconds = min_seconds
        self._pending = bytearray()
        self._speech: list[bytes] = []
        self._speech_bytes = 0
        self._start = 0.0  # where the utterance being collected starts

    @property
    def in_speech(self) -> bool:
        return bool(self._endpointer.in_speech)

    def feed(self, audio: bytes) -> list[SpeechStarted | Utterance]:
        self._pending += self._converter.convert(audio)
        events: list[SpeechStarted | Utterance] = []
        usable = len(self._pending) // self.frame_bytes * self.frame_bytes
        for i in range(0, usable, self.frame_bytes):
            self._process(bytes(self._pending[i : i + self.frame_bytes]), events, last=False)
        del self._pending[:usable]
        return events

    def flush(self) -> list[SpeechStarted | Utterance]:
        """End of stream: whatever speech is still open becomes a last utterance."""
        events: list[SpeechStarted | Utterance] = []
        self._process(bytes(self._pending), events, last=True)
        self._pending.clear()
        return events

    def _process(self, frame: bytes, events: list[SpeechStarted | Utterance], *, last: bool) -> None:
        was_in_speech = self._endpointer.in_speech
        speech = self._endpointer.end_stream(frame) if last else self._endpointer.process(frame)
        if not was_in_speech and self._endpointer.in_speech:
            self._start = self._endpointer.speech_start
            events.append(SpeechStarted(at=self._start))
        if speech is not None:
            self._speech.append(speech)
            self._speech_bytes += len(speech)
            if self._on_speech is not None:
                self._on_speech(speech)
        if not self._speech:
            return
        ended = not self._endpointer.in_speech
        too_long = self._speech_bytes >= self.max_seconds * 2 * SAMPLE_RATE
        if ended or too_long or last:
            seconds = self._speech_bytes / (2 * SAMPLE_RATE)
            end = self._endpointer.speech_end if ended else self._start + seconds
            utterance = Utterance(start=self._start, end=end, pcm=b"".join(self._speech))
            self._speech, self._speech_bytes = [], 0
            self._start = end  # a cut utterance continues from here
            if utterance.duration >= self.min_seconds:
                events.append(utterance)
            if self._on_speech is not None:
                self._on_speech(b"")  # this utterance's audio is complete (reported or too short)
