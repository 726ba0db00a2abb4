"""Benchmark: the offline voice engine (VoiceSession + voice.engines.local_voice), no network at all.

    .venv/bin/python bench/voice_local.py [--sessions 20] [--seconds 30] [--phrases N]

Creates a throwaway database (SQLite file, or `bench_voice_local` next to DATABASE_URL's PostgreSQL) with
the evaluation shop (voice/tests/data/eval_shop.json), then:

1. latency — one call at a time: the caller phrases of voice/tests/data/asr_phrases.json, spoken by
   espeak-ng as μ-law 8 kHz 20 ms frames (voice.testing.speech.caller_frames), each into a fresh
   session through a transport that plays instantly. Per turn: `response_ms` = the endpointer fires
   (end of the caller's utterance as detected, ~0.3 s after they stopped) → first reply audio byte
   handed to the transport, with its parts (asr, brain, tools, first-sentence synthesis); the
   recogniser's real-time factor (decode time / utterance length). The first call, which builds the
   shop's language model and warms caches, is not counted.
2. load — `--sessions` calls at once in this one process for `--seconds`: every caller sends a 20 ms
   frame every 20 ms of wall-clock time (silence, a phrase, silence until our reply has been played in
   real time, a pause, the next phrase), and the transport plays our audio in real time and echoes marks
   when it gets there, like Twilio. Measured: how late the callers' frames get in (the event loop falling
   behind shows here first), the time each receive_audio takes, the turns' response_ms under load, how
   far a reply's later sentences were behind their playback slot (`late_ms`, a gap the caller hears),
   and CPU (this process, and espeak-ng child processes) per call-minute.

Prints ONE JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import statistics
import time
import uuid
from typing import Any

from scratch import ROOT, configure_django, scratch_database  # noqa: E402 - bench/, beside this script

configure_django()
os.environ["OPENAI_API_KEY"] = ""  # the offline engine, whatever the environment says
os.environ["VOICE_ENGINE"] = "local"

FRAME_S = 0.020
# Phrases that end the call (a person, goodbye) are left out of the load run: callers there keep talking.
ENDS_CALL = ("person", "human", "someone", "manager", "transfer", "bye", "that's all", "operator")


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return round(ordered[k], 2)


def summary(values: list[float]) -> dict[str, Any]:
    return {"p50": pct(values, 50), "p95": pct(values, 95), "p99": pct(values, 99), "max": pct(values, 100),
            "n": len(values)}  # fmt: skip


def phrases(limit: int | None) -> list[str]:
    data = json.loads((ROOT / "voice/tests/data/asr_phrases.json").read_text())
    texts = [p["text"] for p in data["phrases"]]
    return texts[:limit] if limit else texts


class RealTimeTransport:
    """A far end that plays our audio in real time and echoes each mark when playback reaches it."""

    def __init__(self) -> None:
        from voice.audio import MULAW_8K

        self.name = "bench"
        self.input_format = MULAW_8K
        self.output_format = MULAW_8K
        self.session: Any = None
        self.play_end = 0.0  # loop time at which everything queued will have played
        self.handles: list[asyncio.TimerHandle] = []
        self.pending: list[str] = []
        self.closed = asyncio.Event()
        self.audio_bytes = 0

    def _loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    async def send_audio(self, audio: bytes) -> None:
        now = self._loop().time()
        self.play_end = max(self.play_end, now) + len(audio) / 8000
        self.audio_bytes += len(audio)

    async def send_audio_b64(self, payload: str) -> None:
        import base64

        await self.send_audio(base64.b64decode(payload))

    async def send_mark(self, name: str) -> None:
        self.pending.append(name)
        self.handles.append(self._loop().call_at(self.play_end, self._echo, name))

    def _echo(self, name: str) -> None:
        if name in self.pending:
            self.pending.remove(name)
            asyncio.ensure_future(self.session.mark_played(name))  # noqa: RUF006

    async def clear(self) -> None:
        for handle in self.handles:
            handle.cancel()
        self.handles.clear()
        names, self.pending = self.pending, []
        self.play_end = self._loop().time()
        for name in names:
            await self.session.mark_played(name)

    async def send_event(self, event: dict[str, Any]) -> None:
        if event.get("type") == "metrics":
            self.session.bench_metrics.append(event)

    async def close(self) -> None:
        self.closed.set()

    @property
    def playing(self) -> bool:
        return self.play_end > self._loop().time()


class InstantTransport(RealTimeTransport):
    """Plays instantly (marks echoed at once): for latency, one call at a time."""

    async def send_mark(self, name: str) -> None:
        await self.session.mark_played(name)


def new_session(shop: Any, transport: RealTimeTransport, **options: Any) -> Any:
    from voice.session import VoiceSession

    session = VoiceSession(
        shop=shop,
        transport=transport,
        call_sid=f"BENCH{uuid.uuid4().hex}",
        channel="phone",
        caller_number="+15555559999",
        engine="local",
        **options,
    )
    session.bench_metrics = []
    transport.session = session
    return session


async def latency(shop: Any, texts: list[str]) -> dict[str, Any]:
    from voice.session import SessionState
    from voice.testing.speech import caller_frames

    turns: list[dict[str, Any]] = []
    for i, text in enumerate(["hello there", *texts]):  # the first call builds the LM and warms caches
        frames = caller_frames(text, lead_ms=300, trail_ms=900)
        transport = InstantTransport()
        session = new_session(shop, transport)
        await session.start()
        await _until(lambda s=session: s.state == SessionState.LISTENING, 30)
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        for frame in frames:  # in real time, as a caller talks: recognition runs while they speak
            next_at += FRAME_S
            await session.receive_audio(frame)
            await asyncio.sleep(max(0.0, next_at - loop.time()))
        await _until(lambda s=session: bool(s.bench_metrics) or s.ended.is_set(), 30)
        await session.stop()
        if i and session.bench_metrics:
            turns.append(session.bench_metrics[0])
    rtf = [t["asr_decode_ms"] / t["speech_ms"] for t in turns if t.get("speech_ms")]
    return {
        "turns": len(turns),
        "response_ms": summary([t["response_ms"] for t in turns if t["response_ms"] is not None]),
        "asr_ms": summary([t["asr_ms"] for t in turns]),
        "model_ms": summary([t["model_ms"] for t in turns]),
        "tool_ms": summary([t["tool_ms"] for t in turns]),
        "tts_ms": summary([t["tts_ms"] for t in turns if t["tts_ms"] is not None]),
        "asr_rtf": {"mean": round(statistics.fmean(rtf), 4), "p95": pct(rtf, 95)} if rtf else None,
    }


async def _until(predicate: Any, limit: float) -> None:
    # Benchmark harness only (not a test): poll the session's state every 5 ms.
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the session did not get there in time")
        await asyncio.sleep(0.005)


async def caller(shop: Any, audio: dict[str, bytes], texts: list[str], stop_at: float, stats: dict[str, Any],
                 rng: random.Random, delay: float) -> None:  # fmt: skip
    """One caller slot: calls after `delay`, talks in real time until stop_at; a call that ends is redialled."""
    from voice.audio import MULAW_SILENCE

    loop = asyncio.get_running_loop()
    await asyncio.sleep(delay)
    silence = MULAW_SILENCE * 160
    while loop.time() < stop_at:
        transport = RealTimeTransport()
        session = new_session(shop, transport)
        await session.start()
        stats["calls"] += 1
        next_at = loop.time()
        plan: list[bytes] = []
        waiting_reply = True  # first, the greeting
        quiet_until = 0.0
        heard_turns = -1
        spoke_at = 0.0
        while loop.time() < stop_at and not session.ended.is_set():
            now = loop.time()
            if next_at > now:
                await asyncio.sleep(next_at - now)
            stats["lateness_ms"].append((loop.time() - next_at) * 1000)
            if loop.time() > stats["steady_from"]:
                stats["steady_lateness_ms"].append((loop.time() - next_at) * 1000)
            next_at += FRAME_S
            if not plan:
                if waiting_reply:
                    if heard_turns < 0:
                        replied = transport.audio_bytes > 0  # the greeting is on its way
                    else:  # our answer (or, if it never comes, give up after 15 s)
                        replied = len(session.bench_metrics) > heard_turns or now - spoke_at > 15
                    if replied and not transport.playing and not transport.pending:
                        waiting_reply = False
                        quiet_until = loop.time() + rng.uniform(0.5, 1.5)
                elif loop.time() >= quiet_until:
                    text = rng.choice(texts)
                    plan = [audio[text][i : i + 160] for i in range(0, len(audio[text]), 160)]
                    heard_turns = len(session.bench_metrics)
                    spoke_at = now + len(plan) * FRAME_S
                    waiting_reply = True
            frame = plan.pop(0) if plan else silence
            started = time.perf_counter()
            await session.receive_audio(frame.ljust(160, MULAW_SILENCE))
            stats["receive_us"].append((time.perf_counter() - started) * 1e6)
            stats["frames"] += 1
        await session.stop()
        stats["metrics"].extend(session.bench_metrics)
        stats["call_seconds"] += session.audio_in_bytes / 8000


async def load(shop: Any, texts: list[str], sessions: int, seconds: float) -> dict[str, Any]:
    from voice.testing.speech import caller_audio

    talk = [t for t in texts if not any(word in t.lower() for word in ENDS_CALL)]
    audio = {t: caller_audio(t, trail_ms=0) for t in talk}
    rng = random.Random(20261126)  # noqa: S311 - benchmark pacing
    stats: dict[str, Any] = {"lateness_ms": [], "steady_lateness_ms": [], "receive_us": [], "metrics": [],
                             "frames": 0, "calls": 0, "call_seconds": 0.0}  # fmt: skip
    loop = asyncio.get_running_loop()
    stagger = min(10.0, seconds / 4)  # calls arrive over the first seconds, not all in the same instant
    stats["steady_from"] = loop.time() + stagger + 10  # every call up and past its greeting
    cpu0, children0 = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    wall0 = time.perf_counter()
    stop_at = loop.time() + seconds
    await asyncio.gather(
        *(
            caller(shop, audio, talk, stop_at, stats, random.Random(rng.random()), delay=i * stagger / sessions)
            for i in range(sessions)
        )
    )
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    child_cpu = (children.ru_utime - children0.ru_utime) + (children.ru_stime - children0.ru_stime)
    metrics = stats["metrics"]
    call_minutes = stats["call_seconds"] / 60
    late = [m["late_ms"] for m in metrics if m.get("late_ms") is not None]
    lateness = stats["lateness_ms"]
    expected_frames = sum(seconds - i * stagger / sessions for i in range(sessions)) / FRAME_S
    return {
        "sessions": sessions,
        "seconds": seconds,
        "calls": stats["calls"],
        "turns": len(metrics),
        "frames": stats["frames"],
        "frames_expected": int(expected_frames),
        "frame_lateness_ms": summary(lateness),
        "frames_late_over_20ms": round(sum(1 for v in lateness if v > 20) / max(1, len(lateness)), 4),
        "frame_lateness_ms_steady": summary(stats["steady_lateness_ms"]),
        "receive_audio_us": summary(stats["receive_us"]),
        "response_ms": summary([m["response_ms"] for m in metrics if m["response_ms"] is not None]),
        "response_ms_first_turn": summary([m["response_ms"] for m in metrics if m["turn"] == 1 and m["response_ms"]]),
        "response_ms_later_turns": summary([m["response_ms"] for m in metrics if m["turn"] > 1 and m["response_ms"]]),
        "asr_ms": summary([m["asr_ms"] for m in metrics]),
        "model_ms": summary([m["model_ms"] for m in metrics]),
        "tts_ms": summary([m["tts_ms"] for m in metrics if m["tts_ms"] is not None]),
        "asr_rtf_mean": round(statistics.fmean(rtf), 4)
        if (rtf := [m["asr_decode_ms"] / m["speech_ms"] for m in metrics if m.get("speech_ms")])
        else None,
        "reply_late_ms": summary(late),
        "replies_with_a_gap": sum(1 for v in late if v > 20),
        "fillers": sum(1 for m in metrics if m["filler"]),
        "cpu_utilisation": round(cpu / wall, 3),
        "espeak_cpu_utilisation": round(child_cpu / wall, 3),
        "cpu_s_per_call_minute": round(cpu / call_minutes, 3) if call_minutes else None,
        "espeak_cpu_s_per_call_minute": round(child_cpu / call_minutes, 3) if call_minutes else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20, help="concurrent calls in the load run")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the load run")
    parser.add_argument("--phrases", type=int, default=0, help="use only the first N phrases (0: all)")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()

    import logging

    import django

    django.setup()
    logging.disable(logging.WARNING)
    from django.db import connection

    with scratch_database("bench_voice_local"):
        from voice.evaluation import build_shop

        shop = build_shop()
        texts = phrases(args.phrases or None)

        async def run() -> dict[str, Any]:
            result: dict[str, Any] = {}
            if not args.skip_latency:
                result["latency"] = await latency(shop, texts)
            result["load"] = await load(shop, texts, args.sessions, args.seconds)
            return result

        results = asyncio.run(run())
        print(
            json.dumps(
                {
                    "bench": "voice_local",
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "database": connection.vendor,
                    **results,
                }
            )
        )


if __name__ == "__main__":
    main()
