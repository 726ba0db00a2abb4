"""What the far end has played of a call's audio: the session sends a mark after each chunk and the
far end echoes it when it gets there (Twilio's mark events; the browser's player does the same)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Segment:
    item_id: str | None  # the Realtime assistant item this audio belongs to (None: our own speech)
    start_ms: float
    sent_ms: float = 0.0


class Playout:
    """What the far end has played of what we sent, in milliseconds of audio since the call started.

    The far end plays in real time and echoes each mark when it gets there, so the position is the last
    echoed mark plus the time since (never past what was sent). A clear drops everything queued. Marks
    not echoed yet keep the audio "playing" up to MARK_GRACE_MS past the estimate (a far end that lags);
    after that the estimate wins (a far end that never echoes)."""

    MARK_GRACE_MS = 1000.0
    MAX_MARKS = 1000

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self.sent_ms = 0.0
        self._anchor_ms = 0.0  # playback position at _anchor_t
        self._anchor_t = now()
        self._marks: dict[str, float] = {}  # name → position at its end, oldest first
        self._seq = 0
        self._segments: deque[Segment] = deque(maxlen=16)
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []

    def position(self) -> float:
        return min(self.sent_ms, self._anchor_ms + (self._now() - self._anchor_t) * 1000)

    def playing(self) -> bool:
        estimate = self._anchor_ms + (self._now() - self._anchor_t) * 1000
        return estimate < self.sent_ms - 0.5 + (self.MARK_GRACE_MS if self._marks else 0.0)

    def remaining_ms(self) -> float:
        return max(0.0, self.sent_ms - self.position())

    def begin(self, item_id: str | None) -> None:
        self._segments.append(Segment(item_id, self.sent_ms))

    def add(self, ms: float, item_id: str | None) -> str:
        """Account for `ms` of audio about to be sent; returns the name of the mark to send after it."""
        if self.position() >= self.sent_ms - 0.5:  # the far end ran dry: this audio starts playing now
            self._anchor_ms, self._anchor_t = self.sent_ms, self._now()
        segment = self._segments[-1] if self._segments else None
        if segment is None or segment.item_id != item_id:
            segment = Segment(item_id, self.sent_ms)
            self._segments.append(segment)
        segment.sent_ms += ms
        self.sent_ms += ms
        self._seq += 1
        name = f"m{self._seq}"
        self._marks[name] = self.sent_ms
        if len(self._marks) > self.MAX_MARKS:  # a far end that does not echo: don't grow forever
            del self._marks[next(iter(self._marks))]
        return name

    def echoed(self, name: str) -> None:
        position = self._marks.pop(name, None)
        if position is None:
            return  # a mark a clear dropped, or not ours
        while self._marks:  # marks are played in order: the earlier ones have been too
            oldest = next(iter(self._marks))
            if self._marks[oldest] > position:
                break
            del self._marks[oldest]
        self._anchor_ms, self._anchor_t = position, self._now()
        self._wake(position)

    def cleared(self) -> None:
        self._marks.clear()
        self._anchor_ms, self._anchor_t = self.sent_ms, self._now()
        self._wake(self.sent_ms)

    def heard(self) -> tuple[str | None, int]:
        """The item playing now and how many ms of it the caller has heard (clamped to what was sent)."""
        position = self.position()
        for segment in reversed(self._segments):
            if segment.start_ms <= position:
                heard = max(0.0, min(position - segment.start_ms, segment.sent_ms))
                return segment.item_id, int(round(heard, 3))  # whole ms, never past what was sent
        return None, 0

    async def wait(self, target_ms: float, slack: float) -> bool:
        """Wait until the far end confirms it played up to `target_ms`; give up after the audio's
        remaining length plus `slack` seconds. True if confirmed."""
        if self._anchor_ms >= target_ms - 0.5 and not self._marks:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (target_ms, future)
        self._waiters.append(entry)
        timeout = max(0.0, target_ms - self.position()) / 1000 + slack
        try:
            await asyncio.wait_for(future, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(entry)

    def _wake(self, position: float) -> None:
        for target, future in self._waiters:
            if target <= position + 0.5 and not future.done():
                future.set_result(None)
