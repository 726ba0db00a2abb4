"""The CallLog writes of one call: queued as the call goes, run one at a time and in order, off the
audio path, and waited out while the database is away (a restart, a failover, a dropped connection)."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from django.db import InterfaceError, OperationalError, close_old_connections

logger = logging.getLogger(__name__)

# The database errors a CallLog write waits out (a restart, a failover, a dropped connection): the write
# is retried, with backoff from RETRY_FIRST to RETRY_MAX seconds, until it succeeds or `retry` seconds
# (VoiceSession's `record_retry`) have passed since the writes started failing.
DATABASE_DOWN = (OperationalError, InterfaceError)
RETRY_FIRST = 0.25
RETRY_MAX = 5.0
# Writers of calls that ended while the database was away, still retrying (a strong reference keeps
# them running after their session is gone).
_LEFT_WRITING: set[asyncio.Task[None]] = set()
_RETRY_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def _retry_gate() -> asyncio.Lock:
    """One retrying writer at a time per process (per event loop). While the database is away, each
    attempt holds the thread that the database work of every call in the process shares (Channels
    runs it all in one) for up to the pool's timeout; twenty calls retrying at once would hold it for
    good, and a new call could not even be let in."""
    loop = asyncio.get_running_loop()
    gate = _RETRY_GATES.get(loop)
    if gate is None:
        gate = _RETRY_GATES[loop] = asyncio.Lock()
    return gate


class CallRecords:
    """One call's queue of CallLog writes. `later()` queues a write; `run()` (a task of the session's)
    runs them; `drain()` waits for the last ones when the call ends."""

    def __init__(self, call_sid: str, *, retry: float, drain: float) -> None:
        self.call_sid = call_sid
        self.retry = retry
        self.drain_seconds = drain
        self._writes: asyncio.Queue[Callable[[], Awaitable[object]] | None] = asyncio.Queue()
        self._failing_since: float | None = None  # time.monotonic() of the first failure in a row

    def later(self, write: Callable[[], Awaitable[object]]) -> None:
        """Queue a CallLog write; writes run one at a time, in order, off the audio path. While the
        database is unreachable they wait, retrying, for up to `retry` s (past the call's end)."""
        self._writes.put_nowait(write)

    async def run(self) -> None:
        while True:
            write = await self._writes.get()
            if write is None:
                return
            await self._write(write)

    async def _write(self, write: Callable[[], Awaitable[object]]) -> None:
        """Run one CallLog write, waiting out a database that is down (see DATABASE_DOWN). Other
        failures are logged and the write dropped: retrying a bug would only repeat it."""
        delay = RETRY_FIRST
        retrying = False
        while True:
            try:
                if retrying:
                    async with _retry_gate():
                        # The connection that failed stays broken in the thread the writes share: drop it.
                        await sync_to_async(close_old_connections)()
                        await write()
                else:
                    await write()
            except DATABASE_DOWN as exc:
                now = time.monotonic()
                if self._failing_since is None:
                    self._failing_since = now
                if now + delay - self._failing_since > self.retry:
                    logger.error("a CallLog write for call %s failed for %.0f s; dropped: %s", self.call_sid,
                                 now - self._failing_since, exc)  # fmt: skip
                    return
                logger.warning("a CallLog write for call %s failed (%s); retrying in %.2f s", self.call_sid,
                               str(exc).strip()[:200], delay)  # fmt: skip
                await asyncio.sleep(delay)
                delay, retrying = min(delay * 2, RETRY_MAX), True
            except Exception:
                logger.exception("a CallLog write for call %s failed", self.call_sid)
                return
            else:
                self._failing_since = None
                return

    async def drain(self, writer: asyncio.Task[None] | None) -> None:
        """Wait up to `drain_seconds` s for `writer` (the task running `run()`) to finish the queued
        writes (2 s if they are failing: the transport closes after this, and the caller should not
        wait long in silence for a database that is away); writes still waiting after that go on in
        the background (the call itself is over)."""
        if writer is None or writer.done():
            if self._writes.empty():
                return
            writer = asyncio.ensure_future(self.run())  # the session's start() failed early
        self._writes.put_nowait(None)
        timeout = self.drain_seconds if self._failing_since is None else min(self.drain_seconds, 2.0)
        try:
            await asyncio.wait_for(asyncio.shield(writer), timeout)
        except TimeoutError:
            logger.warning("call %s ended with its record writes waiting for the database; they go on", self.call_sid)
            _LEFT_WRITING.add(writer)
            writer.add_done_callback(_LEFT_WRITING.discard)
