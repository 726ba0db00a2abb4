"""Phone calls through the real stack: N concurrent simulated Twilio calls against Daphne (or uvicorn)
serving receptionist.asgi with the OpenAI Realtime engine, talking to the fake Realtime server.

    .venv/bin/python bench/calls.py --calls 10,50,100 --duration 60 --servers daphne,uvicorn

Processes (all on this machine, sharing its cores):
  server   daphne / uvicorn on a fresh SQLite database seeded with the demo shop (or --database-url)
  fake     voice.testing.fake_realtime (`--role fake`), answering every caller line with `--reply-ms` audio
  callers  `--caller-processes` processes of telephony.simulator calls (`--role callers`): signed webhook,
           TwiML, media stream, 20 ms μ-law frames in real time all call long, a 1 s "line" (a tone the
           fake's VAD hears) after each answer has played, marks echoed in real time, hang-up at --duration.

Measured:
  cpu_s_per_call_minute   server process utime+stime (/proc/<pid>/stat; with --workers, the processes'
                          sum) over the window where every call is up, divided by calls × window minutes;
  inbound_ms p50/p99      caller frame sent → the fake receives that frame's `input_audio_buffer.append`
  outbound_ms p50/p99     the fake sends a `response.output_audio.delta` → the caller receives it as media
                          (frames are told apart by a marker in their first bytes; both ends read
                          time.perf_counter, i.e. CLOCK_MONOTONIC, which all processes share). This is
                          the relay's added latency *plus* the load generator's own scheduling delay.
                          The fake sends each answer as one burst (as OpenAI does, faster than real time),
                          so later chunks also queue behind earlier ones: `outbound_first_ms` is the first
                          chunk of each answer only, what the caller waits for;
  late_frames             outbound media arriving > 40 ms after its real-time playback slot;
  inbound_ms_p99_all_up   inbound p99 of the frames sent while every call is up (the CPU window): the
                          steady state, without the bursts of calls starting and ending (10 a second
                          with the default ramp) that the whole run's p99 includes;
  held                    the largest N with no failed call, no late frame, and inbound and first-outbound
                          p99 (of the whole run) under --max-p99-ms.

`--workers 2 --redis-url redis://127.0.0.1:6379/15` runs the server as production does on a 2-core
machine (docs/deploy.md: one web process per core; they share live updates through Redis): two uvicorn
workers on one port, calls spread over two interpreters. Use a spare Redis database: the after-call
summaries are queued there for a Celery worker that the bench does not run.

`--loadgen lean` swaps both for bench/lean_loadgen.py: the same calls and events on the wire, raw asyncio
WebSockets and pre-built frames, for a fraction of the CPU (the load generator shares the cores it measures).

Against another relay: `--servers external --webhook-url ... --stream-url ... --server-pid PID` and point
that relay's OpenAI Realtime URL at ws://127.0.0.1:<--fake-port>/v1. The fake alone:
`--role fake --fake-port 8765`. Prints ONE JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from telephony.simulator import (  # noqa: E402
    CallResult,
    Probe,
    Say,
    SimulatorConfig,
    percentile,
    place_call,
)

AUTH_TOKEN = "bench-twilio-auth-token"  # noqa: S105 - a local fake, signs requests to a local server
SHOP = "+15555550100"
CALLER = "+15555550123"
KEY = 12  # base64 characters of the 9 marker bytes at the start of a frame
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# Markers: 9 quiet μ-law bytes (0xF0 | nibble: |sample| ≤ 120, far under any VAD threshold)
# ---------------------------------------------------------------------------------------------
def marker(tag: int, value: int) -> bytes:
    nibbles = [tag] + [(value >> shift) & 0xF for shift in range(28, -1, -4)]
    return bytes(0xF0 | n for n in nibbles)


def tone(ms: int, amplitude: int = 8000, freq: float = 300.0) -> bytes:
    from voice.audio import pcm16_to_mulaw

    n = 8 * ms
    pcm = struct.pack(f"<{n}h", *(int(amplitude * math.sin(2 * math.pi * freq * i / 8000)) for i in range(n)))
    return pcm16_to_mulaw(pcm)


class MarkedCall(Probe):
    """Stamps every outgoing frame with (process, call, frame) and keeps send/receive times by marker."""

    def __init__(self, process: int, call: int, sent: dict[str, float], received: dict[str, float]) -> None:
        self.base = (process << 24) | (call << 16)
        self.sent = sent
        self.received = received

    def outgoing_frame(self, index: int, frame: bytes) -> bytes:
        return marker(0, self.base | (index & 0xFFFF)) + frame[9:]

    def frame_sent(self, payload: str, at: float) -> None:
        self.sent[payload[:KEY]] = at

    def media_received(self, payload: str, at: float) -> None:
        self.received[payload[:KEY]] = at


# ---------------------------------------------------------------------------------------------
# Role: callers
# ---------------------------------------------------------------------------------------------
def caller_steps() -> list[Say]:
    """200 one-second lines: a tone the fake's VAD hears (more than any call lasts)."""
    line = tone(1000)
    frames = tuple(line[i : i + 160] for i in range(0, len(line), 160))
    return [Say(f"line {n}", frames=frames) for n in range(200)]


def caller_config(args: argparse.Namespace, hangup_after: float) -> SimulatorConfig:
    return SimulatorConfig(
        base_url=args.base_url,
        auth_token=AUTH_TOKEN,
        to=SHOP,
        from_=CALLER,
        webhook_url=args.webhook_url,
        stream_url=args.stream_url,
        public_url=args.public_url or args.base_url,
        paced=True,
        hangup_after=hangup_after,
        quiet_ms=600,
        response_timeout=15,
        call_timeout=hangup_after + 60,
    )


def call_summary(r: CallResult) -> dict[str, Any]:
    """What the orchestrator needs of one call (the caller processes write it as JSON)."""
    return {
        "call_sid": r.call_sid,
        "ok": r.ok and r.closed_by == "caller",
        "errors": r.errors,
        "late_frames": r.late_frames,
        "media_frames": r.media_frames,
        "caller_behind": r.caller_behind,
        "exchanges": len(r.exchanges),
        "answer_ms": [e.first_audio_ms for e in r.exchanges if e.first_audio_ms is not None],
        "greeting_ms": r.greeting_ms,
        "closed_by": r.closed_by,
    }


async def run_callers(args: argparse.Namespace) -> dict[str, Any]:
    steps = caller_steps()
    config = caller_config(args, args.duration)
    sent: dict[str, float] = {}
    received: dict[str, float] = {}
    delay = args.t0 - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)

    async def one(i: int) -> Any:
        # Calls start evenly over the ramp (all processes interleaved).
        await asyncio.sleep(args.ramp * (i * args.processes + args.index) / max(1, args.total))
        return await place_call(config, steps, probe=MarkedCall(args.index, i, sent, received))

    results = await asyncio.gather(*(one(i) for i in range(args.count)))
    return {"sent": sent, "received": received, "calls": [call_summary(r) for r in results]}


# ---------------------------------------------------------------------------------------------
# Role: the fake Realtime server, timing appends and deltas
# ---------------------------------------------------------------------------------------------
async def run_fake(args: argparse.Namespace) -> dict[str, Any]:
    from voice.testing import fake_realtime
    from voice.testing.fake_realtime import FakeConnection, FakeRealtime

    received: dict[str, float] = {}
    sent: dict[str, float] = {}
    first: list[str] = []
    counter = [0]
    reply = tone(args.reply_ms, amplitude=6000, freq=440)

    def audio_for_text(text: str, fmt: dict[str, Any]) -> bytes:
        # Greeting and answers alike: reply_ms of tone, each 100 ms chunk stamped with its own marker.
        out = bytearray(reply)
        for start in range(0, len(out), 800):
            counter[0] += 1
            out[start : start + 9] = marker(1, counter[0])
        return bytes(out)

    class TimedConnection(FakeConnection):
        async def handle(self, event: dict[str, Any]) -> None:
            if event.get("type") == "input_audio_buffer.append":
                received[str(event.get("audio", ""))[:KEY]] = time.perf_counter()
                self.received.pop()  # an hour of appends would otherwise stay in memory
            await super().handle(event)

        async def send(self, event: dict[str, Any]) -> None:
            await super().send(event)
            if event["type"] == "response.output_audio.delta":
                key = event["delta"][:KEY]
                sent[key] = time.perf_counter()
                if event.get("response_id") != getattr(self, "_last_response", None):
                    self._last_response = event.get("response_id")
                    first.append(key)  # the first chunk of an answer: nothing of it queued ahead
            if len(self.sent) > 1000:
                self.sent.clear()

    fake_realtime.FakeConnection = TimedConnection  # type: ignore[misc]
    fake = FakeRealtime(port=args.fake_port, audio_for_text=audio_for_text)
    fake._notify = lambda: None  # type: ignore[method-assign]  # nobody waits: skip a task per event
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with fake:
        print(f"fake OpenAI Realtime listening on {fake.url}", flush=True)
        await stop.wait()
    return {"received": received, "sent": sent, "first": first}


# ---------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15)


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat: everything but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / CLK_TCK


def wait_for_port(port: int, proc: subprocess.Popen[Any] | None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


def fresh_postgres(server_url: str) -> tuple[str, Any]:
    """A new database on the PostgreSQL server of `server_url`; returns its URL and a dropper."""
    import uuid
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    parts = urlsplit(server_url)
    name = f"bench_calls_{uuid.uuid4().hex[:10]}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return urlunsplit(parts._replace(path=f"/{name}")), drop


def prepare_database(workdir: Path, database_url: str, redis_url: str = "") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "OPENAI_API_KEY"}}
    if redis_url:  # channel layer, cache and Celery broker on Redis, as in production
        env["REDIS_URL"] = redis_url
    env.update(
        DEBUG="0",
        SECURE_SSL_REDIRECT="0",
        SECRET_KEY="bench-calls-secret-key-not-for-production",  # noqa: S106 - a throwaway local server
        ALLOWED_HOSTS="127.0.0.1,localhost",
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_ACCOUNT_SID="AC" + "b" * 32,
        DATABASE_URL=database_url or f"sqlite:///{workdir / 'db.sqlite3'}",
        LOG_LEVEL="INFO",
        # After-call summaries are Celery's job, on workers in production: queue them in memory and leave
        # them (no worker), so the server's CPU is the calls'. Nothing may reach OpenAI's real hosts.
        CELERY_TASK_ALWAYS_EAGER="0",
        OPENAI_BASE_URL=f"http://127.0.0.1:{free_port()}/v1",
        PYTHONUNBUFFERED="1",
        PYTHONWARNINGS="ignore",
    )
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)  # noqa: S603
    subprocess.run([*manage, "seed_demo"], cwd=ROOT, env=env, check=True, capture_output=True)  # noqa: S603
    return env


def start_server(
    kind: str,
    env: dict[str, str],
    fake_port: int,
    workdir: Path,
    *,
    engine: str = "openai",
    public_url: str = "",
    workers: int = 1,
) -> tuple[subprocess.Popen[Any], str]:
    """`kind` serving receptionist.asgi on a free port with `engine` ("openai": the fake at `fake_port`;
    "local": offline); `public_url` is what it tells Twilio (default: its own address). `workers` > 1
    (uvicorn only): that many server processes sharing the port, as `uvicorn --workers` runs them."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**env, "PUBLIC_BASE_URL": public_url or url, "VOICE_ENGINE": engine}
    if engine == "openai":
        env.update(OPENAI_API_KEY="test", OPENAI_REALTIME_URL=f"ws://127.0.0.1:{fake_port}/v1")
    bin_dir = Path(sys.executable).parent
    if kind == "daphne":
        cmd = [str(bin_dir / "daphne"), "-b", "127.0.0.1", "-p", str(port), "receptionist.asgi:application"]
    elif kind in ("uvicorn", "uvicorn-uvloop"):
        cmd = [
            str(bin_dir / "uvicorn"),
            "receptionist.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--ws",
            "websockets-sansio",
            "--no-access-log",
            "--log-level",
            "warning",
            "--loop",
            "uvloop" if kind == "uvicorn-uvloop" else "asyncio",
        ]
        if workers > 1:
            # uvicorn logs each worker's "Started server process" once it has loaded the app (info level).
            cmd[cmd.index("warning")] = "info"
            cmd += ["--workers", str(workers)]
    else:
        raise ValueError(kind)
    if workers > 1 and kind == "daphne":
        raise ValueError("--workers needs uvicorn: Daphne runs one process")
    log_path = workdir / f"{kind}-{port}.log"
    log = log_path.open("w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    wait_for_port(port, proc)
    if workers > 1:
        # The supervisor listens before its workers have imported the app: wait for every one of them.
        deadline = time.monotonic() + 60
        while log_path.read_text().count("Started server process") < workers:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{workers} uvicorn workers did not start (see {log_path})")
            time.sleep(0.1)
    return proc, url


def process_tree(pid: int) -> list[int]:
    """`pid` and its workers (uvicorn's supervisor and the processes it spawned, not multiprocessing's
    resource tracker)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            children += [int(c) for c in (task / "children").read_text().split()]
    workers = []
    for child in children:
        with contextlib.suppress(FileNotFoundError):  # gone since: not a worker to measure
            if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(child)
    return [pid, *workers]


def stop(proc: subprocess.Popen[Any]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def start_fake(fake_port: int, reply_ms: int, fake_out: Path, loadgen: str = "full") -> subprocess.Popen[Any]:
    """The fake Realtime server (`--role fake`) in its own process; its timings go to `fake_out` on SIGTERM."""
    fake = subprocess.Popen(  # noqa: S603
        [sys.executable, str(Path(__file__).resolve()), "--role", "fake", "--fake-port", str(fake_port)]
        + ["--reply-ms", str(reply_ms), "--out", str(fake_out), "--loadgen", loadgen],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert fake.stdout is not None
    if "listening" not in fake.stdout.readline():  # it prints one line once it listens
        raise RuntimeError("the fake Realtime server did not start")
    return fake


def start_callers(
    script: list[str], args: argparse.Namespace, n: int, t0: float, out_prefix: Path, extra: list[str]
) -> tuple[list[subprocess.Popen[Any]], list[Path]]:
    """`n` calls split over `--caller-processes` processes of `script --role callers`, all starting their
    ramp at `t0`; returns the processes and the files their results go to."""
    processes = min(args.caller_processes, n)
    callers, outs = [], []
    for index in range(processes):
        count = n // processes + (1 if index < n % processes else 0)
        out = Path(f"{out_prefix}-{index}.json")
        outs.append(out)
        cmd = [*script, "--role", "callers", "--index", str(index), "--processes", str(processes)]
        cmd += ["--count", str(count), "--total", str(n), "--t0", repr(t0), "--ramp", str(args.ramp)]
        cmd += ["--duration", str(args.duration), "--out", str(out), *extra]
        callers.append(subprocess.Popen(cmd, cwd=ROOT))  # noqa: S603
    return callers, outs


def run_one(args: argparse.Namespace, kind: str, n: int, env: dict[str, str], workdir: Path) -> dict[str, Any]:
    fake_port = args.fake_port or free_port()
    fake_out = workdir / f"fake-{kind}-{n}.json"
    me = [sys.executable, str(Path(__file__).resolve())]
    fake = start_fake(fake_port, args.reply_ms, fake_out, args.loadgen)
    server = None
    if kind == "external":
        pid, base_url = args.server_pid, args.url
    else:
        server, base_url = start_server(kind, env, fake_port, workdir, workers=args.workers)
        pid = server.pid
    pids = process_tree(pid) if pid else []
    t0 = time.perf_counter() + 3.0  # callers import and wait for this instant
    extra = ["--url", base_url, "--webhook-url", args.webhook_url, "--stream-url", args.stream_url]
    extra += ["--loadgen", args.loadgen]
    callers, outs = start_callers(me, args, n, t0, workdir / f"callers-{kind}-{n}", extra)
    # Every call is up from t0 + ramp (+ a few seconds to connect and greet) until t0 + duration.
    window_start = t0 + args.ramp + 3.0
    window_end = t0 + args.duration - 1.0
    time.sleep(max(0.0, window_start - time.perf_counter()))
    loadgen = [fake.pid] + [p.pid for p in callers]
    cpu_before = sum(cpu_seconds(p) for p in pids) if pids else None
    loadgen_before = sum(cpu_seconds(p) for p in loadgen)
    machine_before = machine_busy_seconds()
    started = time.perf_counter()
    time.sleep(max(0.0, window_end - time.perf_counter()))
    cpu_after = sum(cpu_seconds(p) for p in pids) if pids else None
    loadgen_cpu = sum(cpu_seconds(p) for p in loadgen) - loadgen_before
    machine_cpu = machine_busy_seconds() - machine_before
    window = time.perf_counter() - started
    for proc in callers:
        proc.wait()
    if server is not None:
        stop(server)
    fake.send_signal(signal.SIGTERM)
    fake.wait(30)

    figures = call_figures(json.loads(fake_out.read_text()), outs, all_up=(window_start, window_end))
    cpu = None
    if cpu_before is not None and cpu_after is not None and window > 0:
        cpu = round((cpu_after - cpu_before) / (n * window / 60), 3)
    result = {
        "server": kind,
        "server_processes": max(1, len(pids) - 1) if pids else None,
        "calls": n,
        "failed": figures.pop("failed"),
        "cpu_s_per_call_minute": cpu,
        "window_s": round(window, 1),
        "server_cores": None if cpu is None else round(cpu * n / 60, 2),
        "loadgen_cores": round(loadgen_cpu / window, 2),
        # Everything else on this shared machine during the window (other engineers' tests, the database).
        "other_cores": round(machine_cpu / window - loadgen_cpu / window - ((cpu or 0) * n / 60), 2),
        **figures,
    }
    print(json.dumps(result), file=sys.stderr, flush=True)
    return result


def call_figures(
    timings: dict[str, Any], outs: list[Path], *, all_up: tuple[float, float] = (-math.inf, math.inf)
) -> dict[str, Any]:
    """Failed calls, relay latencies, late frames and answers from the fake's timings and the caller
    processes' output files (the figures of one run, in the order the JSON line shows them). `all_up`:
    the perf_counter span in which every call is up."""
    calls: list[dict[str, Any]] = []
    caller_sent: dict[str, float] = {}
    caller_received: dict[str, float] = {}
    for out in outs:
        data = json.loads(out.read_text())
        calls += data["calls"]
        caller_sent.update(data["sent"])
        caller_received.update(data["received"])
    received = timings["received"]
    inbound = [(received[k] - t) * 1000 for k, t in caller_sent.items() if k in received]
    inbound_all_up = [
        (received[k] - t) * 1000 for k, t in caller_sent.items() if k in received and all_up[0] <= t <= all_up[1]
    ]
    outbound = [(caller_received[k] - t) * 1000 for k, t in timings["sent"].items() if k in caller_received]
    firsts = [(caller_received[k] - timings["sent"][k]) * 1000 for k in timings["first"] if k in caller_received]
    answers = [a for c in calls for a in c["answer_ms"]]
    return {
        "failed": sum(1 for c in calls if not c["ok"]),
        "inbound_ms_p50": _r(percentile(inbound, 50)),
        "inbound_ms_p99": _r(percentile(inbound, 99)),
        "inbound_ms_p99_all_up": _r(percentile(inbound_all_up, 99)),
        "outbound_ms_p50": _r(percentile(outbound, 50)),
        "outbound_ms_p99": _r(percentile(outbound, 99)),
        "outbound_first_ms_p50": _r(percentile(firsts, 50)),
        "outbound_first_ms_p99": _r(percentile(firsts, 99)),
        "frames_matched": [len(inbound), len(outbound)],
        "frames_lost": [len(caller_sent) - len(inbound), len(timings["sent"]) - len(outbound)],
        "late_frames": sum(c["late_frames"] for c in calls),
        "media_frames": sum(c["media_frames"] for c in calls),
        "caller_behind": sum(c["caller_behind"] for c in calls),
        "answer_ms_p50": _r(percentile(answers, 50)),
        "answer_ms_p99": _r(percentile(answers, 99)),
        "turns": sum(c["exchanges"] for c in calls),
        "errors": sorted({e for c in calls for e in c["errors"]})[:5],
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    counts = [int(n) for n in args.calls.split(",")]
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-calls-") as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        database_url, drop = args.database_url, None
        if database_url.startswith("postgres"):
            database_url, drop = fresh_postgres(database_url)
        try:
            env = prepare_database(workdir, database_url, args.redis_url) if args.servers != "external" else {}
            # Servers alternate at each N, so background load on this shared machine falls on each alike.
            for n in counts:
                for kind in args.servers.split(","):
                    runs.append(run_one(args, kind, n, env, workdir))
        finally:
            if drop is not None:
                drop()
    held: dict[str, int | None] = {}
    for kind in args.servers.split(","):
        ok = [
            r["calls"]
            for r in runs
            if r["server"] == kind
            and r["failed"] == 0
            and r["late_frames"] == 0
            and max(r["inbound_ms_p99"] or math.inf, r["outbound_first_ms_p99"] or math.inf) < args.max_p99_ms
        ]
        held[kind] = max(ok) if ok else None
    return {
        "bench": "calls",
        "duration_s": args.duration,
        "reply_ms": args.reply_ms,
        "caller_processes": args.caller_processes,
        "loadgen": args.loadgen,
        "cpus": os.cpu_count(),
        "held_with_p99_under_ms": args.max_p99_ms,
        "held": held,
        "runs": runs,
    }


def run(coro: Any) -> Any:
    """The load generator runs on uvloop when it is installed: the less CPU it takes, the less it
    competes with the server it measures on the same two cores."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["orchestrate", "callers", "fake"], default="orchestrate")
    parser.add_argument("--calls", default="10,50,100", help="concurrent calls per run, comma-separated")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds each call lasts")
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which the calls start")
    parser.add_argument(
        "--servers", default="daphne", help="daphne, uvicorn, uvicorn-uvloop, or external (comma-separated)"
    )
    parser.add_argument("--caller-processes", type=int, default=2)
    parser.add_argument(
        "--loadgen",
        choices=["full", "lean"],
        default="full",
        help="full: telephony.simulator callers and voice.testing.fake_realtime; lean: bench/lean_loadgen.py, "
        "the same calls on the wire for a fraction of the CPU",
    )
    parser.add_argument("--reply-ms", type=int, default=3000, help="length of each answer the fake speaks")
    parser.add_argument("--max-p99-ms", type=float, default=20.0)
    parser.add_argument(
        "--database-url",
        default="",
        help="postgres://… = a fresh database on that PostgreSQL server (dropped after); default a fresh SQLite file",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes (uvicorn --workers), as production runs one per core; CPU is their sum",
    )
    parser.add_argument(
        "--redis-url",
        default="",
        help="Redis for the server's channel layer, cache and Celery broker (needed with --workers > 1: "
        "processes share live updates through it); default: in memory",
    )
    parser.add_argument("--fake-port", type=int, default=0, help="fixed port for the fake Realtime server")
    parser.add_argument("--url", default="", help="external relay: where webhooks go")
    parser.add_argument("--webhook-url", default="", help="voice webhook URL (default: --url + the voice path)")
    parser.add_argument("--stream-url", default="", help="media-stream URL to dial instead of the TwiML's")
    parser.add_argument("--public-url", default="", help="the origin the server tells Twilio (default: --url)")
    parser.add_argument("--server-pid", type=int, default=0, help="external relay: its process, for CPU")
    # worker roles
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--total", type=int, default=1)
    parser.add_argument("--t0", type=float, default=0.0)
    parser.add_argument("--out", default="")
    parser.add_argument("--workdir", default="", help="keep logs and timings here (default: a temporary directory)")
    args = parser.parse_args()
    if args.workers > 1 and not args.redis_url and args.role == "orchestrate":
        parser.error("--workers > 1 needs --redis-url: the in-memory channel layer does not reach across processes")
    if args.role == "fake":
        if args.loadgen == "lean":
            from bench.lean_loadgen import run_lean_fake

            timings = run(run_lean_fake(args))
        else:
            timings = run(run_fake(args))
        if args.out:
            Path(args.out).write_text(json.dumps(timings))
    elif args.role == "callers":
        args.base_url = args.url
        if args.loadgen == "lean":
            from bench.lean_loadgen import run_lean_callers

            result = run(run_lean_callers(args))
        else:
            result = run(run_callers(args))
        Path(args.out).write_text(json.dumps(result))
    else:
        print(json.dumps(orchestrate(args)), flush=True)


if __name__ == "__main__":
    main()
