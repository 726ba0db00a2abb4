"""A Transport for tests: records everything a VoiceSession sends and plays the far end's part.

    transport = FakeTransport()                    # μ-law 8 kHz both ways, like Twilio
    session = VoiceSession(shop=shop, transport=transport, call_sid="CA1", channel="phone")
    transport.attach(session)                      # mark echoes go back to this session
    await session.start()
    await transport.wait_for(lambda: transport.marks_sent)

Marks: with `auto_mark=True` (the default) every mark is echoed as soon as it is sent, as if playback
were instant. With `auto_mark=False` marks wait until the test calls `await transport.play()` (echo
all pending marks, i.e. the caller heard everything so far), which is how a test keeps our audio
"playing" to exercise barge-in. `clear()` drops pending marks and echoes them, as Twilio does.

Everything is kept in order in `log` (("audio", n_bytes), ("mark", name), ("clear",), ("event", type),
("close",)); `audio` holds all audio bytes sent, `events` the UI events, `closed` is an asyncio.Event.
`await transport.wait_for(predicate)` waits (without polling or sleeping) until something sent makes
`predicate()` true.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any, Protocol

from voice.audio import MULAW_8K, AudioFormat


class _MarkSink(Protocol):
    async def mark_played(self, name: str) -> None: ...


class FakeTransport:
    def __init__(
        self,
        *,
        name: str = "fake",
        input_format: AudioFormat = MULAW_8K,
        output_format: AudioFormat = MULAW_8K,
        auto_mark: bool = True,
        fail_send: bool = False,
    ) -> None:
        self.name = name
        self.input_format = input_format
        self.output_format = output_format
        self.auto_mark = auto_mark
        self.fail_send = fail_send  # raise from send_audio (a transport whose socket broke)
        self.audio = bytearray()
        self.chunks: list[bytes] = []
        self.marks_sent: list[str] = []
        self.marks_echoed: list[str] = []
        self.pending_marks: list[str] = []
        self.clears = 0
        self.events: list[dict[str, Any]] = []
        self.log: list[tuple[Any, ...]] = []
        self.closed = asyncio.Event()
        self._session: _MarkSink | None = None
        self._changed: asyncio.Condition | None = None
        self._echoes: set[asyncio.Task[None]] = set()

    def attach(self, session: _MarkSink) -> None:
        """Echo marks to `session` (call before `session.start()`)."""
        self._session = session

    # -- Transport ------------------------------------------------------------------------------
    async def send_audio(self, audio: bytes) -> None:
        if self.fail_send:
            raise ConnectionError("transport is gone")
        self.audio += audio
        self.chunks.append(bytes(audio))
        self.log.append(("audio", len(audio)))
        await self._notify()

    async def send_audio_b64(self, payload: str) -> None:
        await self.send_audio(base64.b64decode(payload))

    async def send_mark(self, name: str) -> None:
        self.marks_sent.append(name)
        self.log.append(("mark", name))
        self.pending_marks.append(name)
        if self.auto_mark:
            self._echo_pending()
        await self._notify()

    async def clear(self) -> None:
        self.clears += 1
        self.log.append(("clear",))
        self._echo_pending()  # Twilio echoes the marks a clear dropped
        await self._notify()

    async def send_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.log.append(("event", event.get("type")))
        await self._notify()

    async def close(self) -> None:
        self.log.append(("close",))
        self.closed.set()
        await self._notify()

    # -- the far end ----------------------------------------------------------------------------
    async def play(self) -> None:
        """The caller has heard everything sent so far: echo every pending mark, in order."""
        self._echo_pending()
        await self._settle()

    def _echo_pending(self) -> None:
        names, self.pending_marks = self.pending_marks, []
        if self._session is None or not names:
            return
        session = self._session

        async def echo() -> None:
            for name in names:
                self.marks_echoed.append(name)
                await session.mark_played(name)
            await self._notify()

        # Not awaited here: a real far end answers later, never from inside the session's own send.
        task = asyncio.ensure_future(echo())
        self._echoes.add(task)
        task.add_done_callback(self._echoes.discard)

    async def _settle(self) -> None:
        if self._echoes:
            await asyncio.gather(*list(self._echoes), return_exceptions=True)

    # -- assertions -----------------------------------------------------------------------------
    @property
    def audio_ms(self) -> float:
        return self.output_format.duration_ms(len(self.audio))

    def events_of(self, type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == type]

    def transcripts(self, role: str | None = None) -> list[str]:
        return [e["text"] for e in self.events_of("transcript") if role is None or e.get("role") == role]

    def states(self) -> list[str]:
        return [e["state"] for e in self.events_of("state")]

    async def _notify(self) -> None:
        if self._changed is None:
            return
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until `predicate()` holds; it is re-checked whenever the session sends something."""
        if self._changed is None:
            self._changed = asyncio.Condition()
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)
