"""Benchmark: what the OpenAI Realtime engine adds per audio frame when it relays a phone call.

    .venv/bin/python bench/voice_realtime_relay.py [--sessions 10] [--seconds 30] [--chunk-ms 20]

The fake Realtime server (voice.testing.fake_realtime) runs in its own process, pacing its reply audio in
real time in `--chunk-ms` deltas, so this process holds only what production holds: VoiceSessions with the
Realtime engine (through the official SDK) and a Twilio-like transport (μ-law 8 kHz, base64 in, marks
echoed at once). `--sessions` callers each send a base64 20 ms μ-law frame every 20 ms of wall-clock time
— silence, and every few seconds a 0.4 s tone the fake's VAD takes for speech — for `--seconds`; the fake
answers each turn with ~2 s of audio.

Measured (the first 2 s of each call are warm-up and not counted):
  inbound_us    receive_audio_b64(payload) called → returned: the frame has been handed to the SDK's
                WebSocket (written to its `websockets` socket), unchanged (μ-law passes through);
  outbound_us   the SDK's recv_bytes() returned a `response.output_audio.delta` → the transport's
                send_audio_b64 is called with that delta's base64 (json.loads, dispatch, playback
                bookkeeping, and the mark that follows are not all in this figure: the mark is sent
                right after);
  *_cpu_us      the same spans in this thread's CPU time (time.thread_time): the work itself, without the
                time the OS gave other processes (this machine is shared) — an upper bound if the span yields;
  python_path_us  our own code per frame with no socket at all: receive_audio_b64 with the socket's send
                stubbed out, and a delta event through json.loads and the engine's dispatcher to the transport;
  append_us     one input_audio_buffer.append on an open connection, three ways: the SDK's typed
                `connection.send({...})` (a dict transformed per call), `send_raw()` of a prebuilt string,
                and that string written to the connection's websockets socket (what the engine does);
  frame_lateness_ms  how late the callers' frames were sent (this process falling behind);
  cpu_s_per_call_minute  this process's CPU (relay + the callers' own loop) per call-minute.

Prints ONE JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from scratch import ROOT, configure_django, scratch_database  # noqa: E402 - bench/, beside this script

configure_django()
os.environ["OPENAI_API_KEY"] = "bench-key"

FRAME_S = 0.020
WARMUP_S = 2.0


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return round(ordered[k], 2)


def summary(values: list[float]) -> dict[str, Any]:
    return {"p50": pct(values, 50), "p99": pct(values, 99), "max": pct(values, 100), "n": len(values)}


class TwilioLikeTransport:
    """μ-law 8 kHz both ways; marks echoed at once; records when each delta reached it."""

    def __init__(self, stats: dict[str, Any]) -> None:
        from voice.audio import MULAW_8K

        self.name = "twilio"
        self.input_format = MULAW_8K
        self.output_format = MULAW_8K
        self.session: Any = None
        self.stats = stats
        self.received_at = 0.0  # when the engine's socket last returned a message
        self.received_cpu = 0.0  # this thread's CPU time then
        self.measuring = False

    async def send_audio(self, audio: bytes) -> None:
        pass

    async def send_audio_b64(self, payload: str) -> None:
        if self.measuring:
            self.stats["outbound_us"].append((time.perf_counter() - self.received_at) * 1e6)
            self.stats["outbound_cpu_us"].append((time.thread_time() - self.received_cpu) * 1e6)
        self.stats["deltas"] += 1

    async def send_mark(self, name: str) -> None:
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.session.mark_played(name)))

    async def clear(self) -> None:
        self.stats["clears"] += 1

    async def send_event(self, event: dict[str, Any]) -> None:
        pass

    async def close(self) -> None:
        pass


def stamp_receipts(session: Any, transport: TwilioLikeTransport) -> None:
    """Note the time each message leaves the SDK's recv_bytes (the engine's reader awaits it per message)."""
    conn = session._engine.conn
    recv_bytes = conn.recv_bytes

    async def timed() -> bytes:
        data = await recv_bytes()
        transport.received_at, transport.received_cpu = time.perf_counter(), time.thread_time()
        return data

    conn.recv_bytes = timed


def frame(payload: bytes) -> str:
    return base64.b64encode(payload).decode("ascii")


async def caller(shop: Any, stop_at: float, stats: dict[str, Any], offset: float) -> None:
    from voice.audio import MULAW_SILENCE
    from voice.session import VoiceSession
    from voice.testing.fake_realtime import tone

    loop = asyncio.get_running_loop()
    silence = frame(MULAW_SILENCE * 160)
    speech_audio = tone(400, {"type": "audio/pcmu"}, freq=300, amplitude=8000)
    speech = [frame(speech_audio[i : i + 160]) for i in range(0, len(speech_audio), 160)]
    transport = TwilioLikeTransport(stats)
    session = VoiceSession(
        shop=shop,
        transport=transport,
        call_sid=f"BENCH{uuid.uuid4().hex}",
        channel="phone",
        caller_number="+15555559999",
        engine="openai",
    )
    transport.session = session
    await session.start()
    if session.engine_name != "openai":
        raise RuntimeError("the session did not reach the fake Realtime server")
    stamp_receipts(session, transport)
    started = loop.time()
    next_at = started
    next_speech = started + 3.0 + offset
    plan: list[str] = []
    while loop.time() < stop_at and not session.ended.is_set():
        now = loop.time()
        if next_at > now:
            await asyncio.sleep(next_at - now)
        measuring = loop.time() - started > WARMUP_S
        transport.measuring = measuring
        if measuring:
            stats["lateness_ms"].append((loop.time() - next_at) * 1000)
        next_at += FRAME_S
        if not plan and loop.time() >= next_speech:
            plan = list(speech)
            next_speech = loop.time() + 4.0
        payload = plan.pop(0) if plan else silence
        t0, c0 = time.perf_counter(), time.thread_time()
        await session.receive_audio_b64(payload)
        if measuring:
            stats["inbound_us"].append((time.perf_counter() - t0) * 1e6)
            stats["inbound_cpu_us"].append((time.thread_time() - c0) * 1e6)
        stats["frames"] += 1
    stats["engines"].append(session.engine_name)
    stats["fallbacks"] += session.engine_name != "openai"
    await session.stop()
    stats["call_seconds"] += loop.time() - started


async def append_cost(shop: Any, n: int) -> dict[str, Any]:
    """One connection: n appends each with the SDK's typed send(dict), send_raw(str) and the socket's send(str),
    interleaved."""
    from django.conf import settings

    from voice.audio import MULAW_SILENCE
    from voice.engines.realtime import _client

    payload = frame(MULAW_SILENCE * 160)
    typed: list[float] = []
    raw: list[float] = []
    direct: list[float] = []
    conn = await _client().realtime.connect(model=settings.OPENAI_REALTIME_MODEL).enter()
    try:
        await conn.send({"type": "session.update", "session": {"type": "realtime", "audio": {
            "input": {"format": {"type": "audio/pcmu"}}, "output": {"format": {"type": "audio/pcmu"}}}}})  # fmt: skip
        for i in range(n):
            t0 = time.perf_counter()
            if i % 3 == 0:
                await conn.send({"type": "input_audio_buffer.append", "audio": payload})
                typed.append((time.perf_counter() - t0) * 1e6)
            elif i % 3 == 1:
                await conn.send_raw('{"type":"input_audio_buffer.append","audio":"' + payload + '"}')
                raw.append((time.perf_counter() - t0) * 1e6)
            else:
                await conn._connection.send('{"type":"input_audio_buffer.append","audio":"' + payload + '"}')
                direct.append((time.perf_counter() - t0) * 1e6)
            if i % 50 == 0:
                await asyncio.sleep(0)  # let the server read
    finally:
        await conn.close()
    return {"sdk_send_dict": summary(typed), "send_raw": summary(raw), "socket_send": summary(direct)}


async def python_path(shop: Any, n: int) -> dict[str, Any]:
    """Our own code per frame, without any socket: receive_audio_b64 with the socket's send replaced by a
    no-op, and an output_audio.delta event handed to the engine's dispatcher (json.loads included)."""
    from voice.audio import MULAW_SILENCE
    from voice.session import VoiceSession

    stats: dict[str, Any] = {"outbound_us": [], "outbound_cpu_us": [], "deltas": 0}
    transport = TwilioLikeTransport(stats)
    session = VoiceSession(
        shop=shop, transport=transport, call_sid=f"BENCH{uuid.uuid4().hex}", channel="phone", engine="openai"
    )
    transport.session = session
    await session.start()
    engine = session._engine
    real_socket = engine._ws

    class NoSocket:
        async def send(self, message: str) -> None:
            return None

    engine._ws = NoSocket()
    payload = frame(MULAW_SILENCE * 160)
    inbound: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        await session.receive_audio_b64(payload)
        inbound.append((time.perf_counter() - t0) * 1e6)
    engine._ws = real_socket
    delta = json.dumps({"type": "response.output_audio.delta", "event_id": "event_1", "response_id": "resp_bench",
                        "item_id": "item_bench", "output_index": 0, "content_index": 0, "delta": payload})  # fmt: skip
    handlers = engine._handlers
    outbound: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        event = json.loads(delta)
        await handlers[event["type"]](event)
        outbound.append((time.perf_counter() - t0) * 1e6)
    await session.stop()
    return {"inbound_us": summary(inbound), "outbound_us": summary(outbound)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_fake(port: int, chunk_ms: int, turns: int) -> subprocess.Popen[bytes]:
    script = Path(tempfile.mkstemp(suffix=".json")[1])
    script.write_text(json.dumps([{"transcript": "hello", "reply": "x" * 33} for _ in range(turns)]))
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "voice.testing.fake_realtime", "--port", str(port), "--script", str(script), "--paced",
         "--chunk-ms", str(chunk_ms)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.readline()  # "listening on ..."
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--chunk-ms", type=int, default=20, help="audio per delta from the fake")
    parser.add_argument("--appends", type=int, default=4000)
    args = parser.parse_args()

    port = free_port()
    os.environ["OPENAI_REALTIME_URL"] = f"ws://127.0.0.1:{port}/v1"
    fake = start_fake(port, args.chunk_ms, turns=int(args.seconds / 4) + 5)

    import logging

    import django

    django.setup()
    logging.disable(logging.WARNING)
    try:
        with scratch_database("bench_voice_relay"):
            from voice.evaluation import build_shop

            shop = build_shop()

            async def run() -> dict[str, Any]:
                stats: dict[str, Any] = {
                    "inbound_us": [], "outbound_us": [], "inbound_cpu_us": [], "outbound_cpu_us": [],
                    "lateness_ms": [], "frames": 0, "deltas": 0, "clears": 0,
                    "call_seconds": 0.0, "engines": [], "fallbacks": 0,
                }  # fmt: skip
                appends = await append_cost(shop, args.appends)
                ours = await python_path(shop, args.appends)
                loop = asyncio.get_running_loop()
                cpu0, wall0 = time.process_time(), time.perf_counter()
                stop_at = loop.time() + args.seconds
                await asyncio.gather(*(caller(shop, stop_at, stats, offset=i * 0.37) for i in range(args.sessions)))
                cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
                minutes = stats["call_seconds"] / 60
                return {
                    "sessions": args.sessions,
                    "seconds": args.seconds,
                    "chunk_ms": args.chunk_ms,
                    "frames": stats["frames"],
                    "deltas": stats["deltas"],
                    "inbound_us": summary(stats["inbound_us"]),
                    "outbound_us": summary(stats["outbound_us"]),
                    "inbound_cpu_us": summary(stats["inbound_cpu_us"]),
                    "outbound_cpu_us": summary(stats["outbound_cpu_us"]),
                    "append_us": appends,
                    "python_path_us": ours,
                    "frame_lateness_ms": summary(stats["lateness_ms"]),
                    "fallbacks": stats["fallbacks"],
                    "cpu_utilisation": round(cpu / wall, 3),
                    "cpu_s_per_call_minute": round(cpu / minutes, 3) if minutes else None,
                }

            results = asyncio.run(run())
            line = {"bench": "voice_realtime_relay", "python": platform.python_version(), "cpus": os.cpu_count()}
            print(json.dumps({**line, **results}))
    finally:
        fake.terminate()
        with contextlib.suppress(Exception):
            fake.wait(5)


if __name__ == "__main__":
    main()
