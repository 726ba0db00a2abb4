"""Load and soak (issue #7): simulated phone calls against Daphne with Redis and PostgreSQL, as production
runs it, reusing bench/calls.py's callers, fake Realtime server and figures.

    .venv/bin/python bench/soak.py --phase twenty      # 20 calls, openai (fake) and local engines, CallLogs checked
    .venv/bin/python bench/soak.py --phase max         # step N up (20, 40, 60, …) until a limit is missed
    .venv/bin/python bench/soak.py --phase soak        # a steady 20 calls for 10 minutes, RSS every 10 s
    .venv/bin/python bench/soak.py --phase two         # two Daphne processes behind a round-robin proxy

Every phase: a fresh PostgreSQL database (`--database-url`, dropped and re-created, default `bench_soak`),
the channel layer, cache and Celery broker on Redis (`--redis-url`, default db 7, emptied first; no Celery
worker runs, so summaries wait in the queue), Daphne serving receptionist.asgi with `VOICE_ENGINE=openai`
against the fake Realtime server (bench/calls.py `--role fake`) or `VOICE_ENGINE=local` (offline: speech
recognition and espeak-ng in the server process, the callers speaking real lines).

Checked per run: failed calls, late frames (media > 40 ms after its playback slot), relay latency (openai:
caller frame → fake, fake → caller, see bench/calls.py), and in the database afterwards that every call has
a closed CallLog (status completed, ended_at set) with transcript turns. `max` holds an N when nothing failed,
no frame was late and inbound and first-outbound p99 are under `--max-p99-ms`. `soak` replaces each call as it
ends (a steady N), samples the server's RSS and PostgreSQL's connection count every 10 s, and calls memory flat
when every sample after the warm-up is within ±10 % of the first one after it. `two` puts a small round-robin
TCP proxy (`--role proxy`: asyncio streams, bytes spliced, backends alternating per connection, WebSocket
upgrades and plain HTTP requests each taking their own turns) in front of two Daphne processes, counts what
each one served, and connects a dashboard socket (the owner's activity socket, logged in with a session
cookie made here) to process A only, then places one call at process B: A's dashboard must show it (the
Redis channel layer carries B's events to A).

Prints ONE JSON line (per-run lines go to stderr as they finish). The machine's load average is recorded
with each run: other engineers' test suites share its two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _bench_calls() -> Any:
    """bench/calls.py as the module `bench_calls` (the name `calls` is the Django app's)."""
    spec = importlib.util.spec_from_file_location("bench_calls", ROOT / "bench" / "calls.py")
    assert spec is not None and spec.loader is not None  # noqa: S101
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_calls"] = module
    spec.loader.exec_module(module)
    return module


bench_calls = _bench_calls()
SHOP = bench_calls.SHOP
MarkedCall = bench_calls.MarkedCall
call_figures = bench_calls.call_figures
call_summary = bench_calls.call_summary
caller_config = bench_calls.caller_config
caller_steps = bench_calls.caller_steps
cpu_seconds = bench_calls.cpu_seconds
free_port = bench_calls.free_port
machine_busy_seconds = bench_calls.machine_busy_seconds
prepare_database = bench_calls.prepare_database
start_fake = bench_calls.start_fake
start_callers = bench_calls.start_callers
start_server = bench_calls.start_server
stop = bench_calls.stop
wait_for_port = bench_calls.wait_for_port

from telephony.simulator import Probe, Say, place_call  # noqa: E402

# What callers say to the offline engine (public questions: no verification, no transfer, no goodbye).
SPOKEN_LINES = ("what are your hours", "where are you located", "what services do you offer")
NO_TIMINGS: dict[str, Any] = {"received": {}, "sent": {}, "first": []}
RECENT_CALL = re.compile(r'id="recent-call-(\d+)"')


# ---------------------------------------------------------------------------------------------
# Role: callers — `slots` calls at once, each slot placing calls back to back until `--until`
# ---------------------------------------------------------------------------------------------
async def run_callers(args: argparse.Namespace) -> dict[str, Any]:
    spoken = args.engine == "local"
    steps = [Say(SPOKEN_LINES[n % len(SPOKEN_LINES)]) for n in range(200)] if spoken else caller_steps()
    sent: dict[str, float] = {}
    received: dict[str, float] = {}
    results: list[dict[str, Any]] = []
    serial = itertools.count()
    delay = args.t0 - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)

    async def slot(i: int) -> None:
        # Slots start evenly over the ramp (all processes interleaved).
        await asyncio.sleep(args.ramp * (i * args.processes + args.index) / max(1, args.total))
        while True:
            length = min(args.duration, args.until - time.perf_counter()) if args.until else args.duration
            if length < min(10.0, args.duration):
                return
            # Markers stamp the first bytes of every frame: fine on a tone, but they would clip speech.
            probe = Probe() if spoken else MarkedCall(args.index, next(serial) & 0xFF, sent, received)
            started = time.time()
            r = await place_call(caller_config(args, length), steps, probe=probe)
            results.append({**call_summary(r), "started": started, "ended": time.time()})
            if not args.until:
                return
            if r.duration_s < 1.0:
                await asyncio.sleep(1.0)  # a call refused at once: don't spin on a broken server

    await asyncio.gather(*(slot(i) for i in range(args.count)))
    return {"sent": sent, "received": received, "calls": results}


# ---------------------------------------------------------------------------------------------
# Role: proxy — round-robin TCP (HTTP and WebSocket alike), counting what each backend served
# ---------------------------------------------------------------------------------------------
async def run_proxy(args: argparse.Namespace) -> dict[str, Any]:
    backends = [int(p) for p in args.backends.split(",")]
    # One turn for WebSocket upgrades and one for plain HTTP: with a single turn, each call's webhook and
    # media stream arrive back to back, so every stream landed on the same process (seen in a run).
    turns = {True: itertools.count(), False: itertools.count()}
    served: dict[str, dict[str, int]] = {str(p): {} for p in backends}

    async def splice(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            pass

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await reader.read(65536)
            websocket = b"upgrade: websocket" in first.lower()
            port = backends[next(turns[websocket]) % len(backends)]
            # Count by path, e.g. "GET /telephony/twilio/stream/" (what each process served).
            words = first.split(b" ", 2)
            path = words[1].decode("ascii", "replace").split("?")[0] if len(words) > 2 else "(no request)"
            served[str(port)][path] = served[str(port)].get(path, 0) + 1
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        except (ConnectionError, OSError):
            writer.close()
            return
        up_writer.write(first)
        await asyncio.gather(splice(reader, up_writer), splice(up_reader, writer))
        for w in (up_writer, writer):
            with contextlib.suppress(ConnectionError, OSError):
                w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", args.listen)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    loop.add_signal_handler(signal.SIGINT, done.set)
    async with server:
        print(f"proxy listening on {args.listen}", flush=True)
        await done.wait()
    return {"served": served}


# ---------------------------------------------------------------------------------------------
# Role: dashboard — the owner's activity socket, recording every live update it gets
# ---------------------------------------------------------------------------------------------
async def run_dashboard(args: argparse.Namespace) -> dict[str, Any]:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    frames: list[dict[str, Any]] = []
    closed: list[str] = []
    origin = urlunsplit(urlsplit(args.url)._replace(scheme="http", path=""))
    headers = {"Cookie": args.cookie, "Origin": origin}
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    async with connect(args.url, additional_headers=headers, open_timeout=10) as ws:
        print("dashboard connected", flush=True)

        async def listen() -> None:
            try:
                async for message in ws:
                    text = message if isinstance(message, str) else message.decode()
                    frames.append({"at": time.time(), "calls": sorted({int(n) for n in RECENT_CALL.findall(text)})})
            except ConnectionClosed as exc:  # the server closed it: that is a finding, not a crash
                closed.append(f"{exc.__class__.__name__}: {exc}")

        task = asyncio.create_task(listen())
        await done.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return {"frames": frames, "closed_by_server": closed}


# ---------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------
def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for {pid}")


def load_average() -> list[float]:
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


class Database:
    """The bench's own PostgreSQL database (re-created) and Redis db (emptied), and reads of it."""

    def __init__(self, url: str, redis_url: str) -> None:
        parts = urlsplit(url)
        self.url = url
        self.name = parts.path.lstrip("/")
        self.admin = urlunsplit(parts._replace(path="/postgres"))
        self.redis_url = redis_url

    def recreate(self) -> None:
        import psycopg
        import redis

        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.name}"')
        redis.Redis.from_url(self.redis_url).flushdb()  # our own db number only

    def connections(self) -> int:
        import psycopg

        with psycopg.connect(self.admin, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [self.name]).fetchone()
        return int(row[0]) if row else 0


def django_setup(env: dict[str, str]) -> None:
    """This process reads the bench database through the project's models (same settings as the servers)."""
    import django

    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "receptionist.settings")
    django.setup()


def check_call_logs(call_sids: list[str]) -> dict[str, Any]:
    """Every call placed has a closed CallLog with turns: how many don't, and a few of their sids."""
    from django.db.models import Count

    from calls.models import CallLog

    logs = {
        c.call_sid: c
        for c in CallLog.objects.filter(call_sid__in=call_sids)
        .annotate(n_turns=Count("turns"))
        .only("call_sid", "status", "ended_at", "engine", "outcome")
    }
    missing = [s for s in call_sids if s not in logs]
    open_ = [s for s, c in logs.items() if c.status != CallLog.Status.COMPLETED or c.ended_at is None]
    no_turns = [s for s, c in logs.items() if c.n_turns == 0]  # type: ignore[attr-defined]
    engines: dict[str, int] = {}
    outcomes: dict[str, int] = {}
    for c in logs.values():
        engines[c.engine] = engines.get(c.engine, 0) + 1
        outcomes[c.outcome] = outcomes.get(c.outcome, 0) + 1
    return {
        "call_logs": len(logs),
        "call_logs_missing": len(missing),
        "call_logs_open": len(open_),
        "call_logs_without_turns": len(no_turns),
        "turns": sum(c.n_turns for c in logs.values()),  # type: ignore[attr-defined]
        "engines": engines,
        "outcomes": outcomes,
        "lost_examples": (missing + open_ + no_turns)[:3],
    }


def session_cookie() -> tuple[str, str]:
    """A logged-in session for the demo shop's owner (made in the shared database) and the shop's slug."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from shops.models import Membership

    membership = Membership.objects.select_related("shop", "user").filter(shop__phone_number=SHOP).first()
    if membership is None:
        raise RuntimeError("the demo shop has no member")
    client = Client()
    client.force_login(get_user_model().objects.get(pk=membership.user_id))
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}", membership.shop.slug


class Run:
    """One run: the fake, one or two Daphne processes (+ the proxy), the callers, sampling, and the checks."""

    def __init__(self, args: argparse.Namespace, env: dict[str, str], workdir: Path, name: str) -> None:
        self.args, self.env, self.workdir, self.name = args, env, workdir, name
        self.procs: list[subprocess.Popen[Any]] = []
        self.me = [sys.executable, str(Path(__file__).resolve())]

    def helper(self, role: str, *extra: str, ready: str = "") -> subprocess.Popen[Any]:
        proc = subprocess.Popen(  # noqa: S603
            [*self.me, "--role", role, *extra], cwd=ROOT, stdout=subprocess.PIPE if ready else None, text=True
        )
        self.procs.append(proc)
        if ready:
            assert proc.stdout is not None  # noqa: S101
            if ready not in proc.stdout.readline():
                raise RuntimeError(f"{role} did not start")
        return proc

    def execute(
        self,
        n: int,
        *,
        engine: str = "openai",
        servers: int = 1,
        steady_s: float = 0.0,
        sample_every: float = 0.0,
    ) -> dict[str, Any]:
        args, workdir = self.args, self.workdir
        fake_port = free_port()
        fake_out = workdir / f"fake-{self.name}.json"
        fake = start_fake(fake_port, args.reply_ms, fake_out) if engine == "openai" else None
        proxy_port = free_port() if servers > 1 else 0
        public = f"http://127.0.0.1:{proxy_port}" if proxy_port else ""
        daphnes = [
            start_server("daphne", self.env, fake_port, workdir, engine=engine, public_url=public)
            for _ in range(servers)
        ]
        pids = [p.pid for p, _ in daphnes]
        base_url = public or daphnes[0][1]
        proxy = dashboard = None
        proxy_out, dashboard_out = workdir / f"proxy-{self.name}.json", workdir / f"dashboard-{self.name}.json"
        if proxy_port:
            ports = ",".join(str(urlsplit(url).port) for _, url in daphnes)
            proxy = self.helper(
                "proxy", "--listen", str(proxy_port), "--backends", ports, "--out", str(proxy_out), ready="listening"
            )
            wait_for_port(proxy_port, proxy)
            cookie, slug = session_cookie()
            ws_a = daphnes[0][1].replace("http://", "ws://") + f"/ws/shops/{slug}/activity/"
            dashboard = self.helper(
                "dashboard", "--url", ws_a, "--cookie", cookie, "--out", str(dashboard_out), ready="connected"
            )
        t0 = time.perf_counter() + 3.0
        until = t0 + steady_s if steady_s else 0.0
        extra = ["--engine", engine, "--until", repr(until), "--url", base_url, "--public-url", base_url]
        callers, outs = start_callers(self.me, args, n, t0, workdir / f"callers-{self.name}", extra)
        # CPU is measured while every call is up: after the ramp (and the greetings), before the first hang-up.
        window_start = t0 + args.ramp + 5.0
        window_end = (until or t0 + args.duration) - 1.0
        samples: list[dict[str, Any]] = []
        began = time.perf_counter()

        def sample() -> None:
            samples.append(
                {
                    "t": round(time.perf_counter() - began),
                    "rss_mb": [rss_mb(pid) for pid in pids],
                    "pg_connections": self.db.connections(),
                    "load": load_average(),
                }
            )

        time.sleep(max(0.0, window_start - time.perf_counter()))
        loadgen = [p.pid for p in callers] + ([fake.pid] if fake else []) + ([proxy.pid] if proxy else [])
        cpu_before = [cpu_seconds(pid) for pid in pids]
        loadgen_before = sum(cpu_seconds(p) for p in loadgen)
        machine_before = machine_busy_seconds()
        load_before = load_average()
        started = time.perf_counter()
        sample()
        while time.perf_counter() < window_end:
            step = sample_every or (window_end - time.perf_counter())
            time.sleep(max(0.0, min(step, window_end - time.perf_counter())))
            if sample_every and time.perf_counter() < window_end:
                sample()
        window = time.perf_counter() - started
        server_cpu = [cpu_seconds(pid) - before for pid, before in zip(pids, cpu_before, strict=True)]
        loadgen_cpu = sum(cpu_seconds(p) for p in loadgen) - loadgen_before
        machine_cpu = machine_busy_seconds() - machine_before
        sample()
        for proc in callers:
            proc.wait()
        proof = self.call_at_b(daphnes[1][1], public, engine) if dashboard is not None else None
        pg_after = self.db.connections()
        for helper in [dashboard, proxy]:
            if helper is not None:
                helper.send_signal(signal.SIGTERM)
                helper.wait(30)
        for proc, _ in daphnes:
            stop(proc)
        if fake is not None:
            fake.send_signal(signal.SIGTERM)
            fake.wait(30)

        figures = call_figures(json.loads(fake_out.read_text()) if fake else NO_TIMINGS, outs)
        placed = [c for out in outs for c in json.loads(out.read_text())["calls"]]
        sids = [c["call_sid"] for c in placed]
        cores = sum(server_cpu) / window
        result: dict[str, Any] = {
            "run": self.name,
            "engine": engine,
            "servers": servers,
            "concurrent": n,
            "calls_placed": len(placed),
            "failed": figures.pop("failed"),
            **check_call_logs(sids),
            "cpu_s_per_call_minute": round(cores * 60 / n, 3),
            "server_cores": [round(c / window, 2) for c in server_cpu],
            "loadgen_cores": round(loadgen_cpu / window, 2),
            "other_cores": round((machine_cpu - loadgen_cpu - sum(server_cpu)) / window, 2),
            "load_average": [load_before, load_average()],
            "window_s": round(window, 1),
            "pg_connections_max": max(s["pg_connections"] for s in samples),
            "pg_connections_after_calls": pg_after,
            **figures,
        }
        if sample_every:
            result["samples"] = samples
        if proxy is not None:
            result["proxy"] = json.loads(proxy_out.read_text())["served"]
        if dashboard is not None and proof is not None:
            seen = json.loads(dashboard_out.read_text())
            frames = seen["frames"]
            result["dashboard_a"] = {
                "closed_by_server": seen["closed_by_server"],
                "frames": len(frames),
                "calls_seen": len({c for f in frames for c in f["calls"]}),
                **proof,
                "call_at_b_shown_on_a": any(proof["call_at_b_id"] in f["calls"] for f in frames),
            }
        print(json.dumps(result), file=sys.stderr, flush=True)
        return result

    def call_at_b(self, b_url: str, public: str, engine: str) -> dict[str, Any]:
        """One call whose webhook and media stream both go to process B (not through the proxy)."""
        from calls.models import CallLog

        ns = argparse.Namespace(base_url=b_url, webhook_url="", stream_url="", public_url=public)
        steps = caller_steps()[:2] if engine == "openai" else [Say(SPOKEN_LINES[0])]
        r = asyncio.run(place_call(caller_config(ns, 12.0), steps))
        log = CallLog.objects.filter(call_sid=r.call_sid).first()
        if log is None:
            raise RuntimeError(f"the call at B left no CallLog: {r.errors}")
        return {"call_at_b_ok": r.ok, "call_at_b_id": log.pk}

    @property
    def db(self) -> Database:
        return self.args.database


def rss_summary(samples: list[dict[str, Any]], warmup_s: float) -> dict[str, Any]:
    rss = [s["rss_mb"][0] for s in samples]
    after = [s["rss_mb"][0] for s in samples if s["t"] >= warmup_s] or rss
    base = after[0]
    spread = max(abs(v - base) / base * 100 for v in after)
    pg = [s["pg_connections"] for s in samples]
    return {
        "rss_mb_first": rss[0],
        "rss_mb_after_warmup": base,
        "rss_mb_last": rss[-1],
        "rss_mb_max": max(rss),
        "rss_max_deviation_pct_after_warmup": round(spread, 1),
        "memory_flat": spread <= 10.0,
        "pg_connections_min_max": [min(pg), max(pg)],
        "load_average_max_1m": max(s["load"][0] for s in samples),
    }


def held(result: dict[str, Any], limit: float) -> bool:
    p99 = max(result["inbound_ms_p99"] or 1e9, result["outbound_first_ms_p99"] or 1e9)
    lost = result["call_logs_missing"] + result["call_logs_open"] + result["call_logs_without_turns"]
    return result["failed"] == 0 and result["late_frames"] == 0 and lost == 0 and p99 < limit


def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    args.database = Database(args.database_url, args.redis_url)
    out: dict[str, Any] = {"bench": "soak", "phase": args.phase, "cpus": os.cpu_count(), "duration_s": args.duration}
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        args.database.recreate()
        env = prepare_database(workdir, args.database_url)
        env.update(REDIS_URL=args.redis_url, CELERY_TASK_ALWAYS_EAGER="0")
        django_setup(env)
        try:
            if args.phase == "twenty":
                out["runs"] = [
                    Run(args, env, workdir, f"twenty-{engine}").execute(args.calls, engine=engine)
                    for engine in args.engines.split(",")
                ]
            elif args.phase == "max":
                runs = []
                for n in range(args.calls, args.max_calls + 1, args.step):
                    runs.append(Run(args, env, workdir, f"max-{n}").execute(n))
                    if not held(runs[-1], args.max_p99_ms):
                        break  # the first N that misses: above the maximum
                ok = [r["concurrent"] for r in runs if held(r, args.max_p99_ms)]
                out.update(runs=runs, held_with_p99_under_ms=args.max_p99_ms, held=max(ok) if ok else None)
            elif args.phase == "soak":
                run = Run(args, env, workdir, "soak").execute(
                    args.calls, steady_s=args.soak_minutes * 60, sample_every=10.0
                )
                out.update(run=run, **rss_summary(run["samples"], args.warmup_s))
            else:
                out["run"] = Run(args, env, workdir, "two").execute(args.calls, servers=2)
        finally:
            from django.db import connections

            connections.close_all()
            if not args.keep_database:
                with contextlib.suppress(Exception):
                    args.database.recreate()  # leaves it empty: nothing of the run lingers
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["orchestrate", "callers", "proxy", "dashboard"], default="orchestrate")
    parser.add_argument("--phase", choices=["twenty", "max", "soak", "two"], default="twenty")
    parser.add_argument("--calls", type=int, default=20, help="concurrent calls (max: the first N)")
    parser.add_argument("--max-calls", type=int, default=200, help="max: the last N tried")
    parser.add_argument("--step", type=int, default=20, help="max: N goes up by this")
    parser.add_argument("--engines", default="openai,local", help="twenty: the engines, comma-separated")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds each call lasts")
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which the calls start")
    parser.add_argument("--soak-minutes", type=float, default=10.0)
    parser.add_argument("--warmup-s", type=float, default=120.0, help="soak: RSS before this is warm-up")
    parser.add_argument("--caller-processes", type=int, default=2)
    parser.add_argument("--reply-ms", type=int, default=3000, help="length of each answer the fake speaks")
    parser.add_argument("--max-p99-ms", type=float, default=20.0)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_soak")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--keep-database", action="store_true", help="leave the run's rows for a look afterwards")
    parser.add_argument("--workdir", default="", help="keep logs and timings here (default: a temporary directory)")
    # worker roles
    parser.add_argument("--engine", default="openai")
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--total", type=int, default=1)
    parser.add_argument("--t0", type=float, default=0.0)
    parser.add_argument("--until", type=float, default=0.0)
    parser.add_argument("--url", default="")
    parser.add_argument("--public-url", default="")
    parser.add_argument("--listen", type=int, default=0)
    parser.add_argument("--backends", default="")
    parser.add_argument("--cookie", default="")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    if args.role == "orchestrate":
        print(json.dumps(orchestrate(args)), flush=True)
        return
    if args.role == "callers":
        args.base_url, args.webhook_url, args.stream_url = args.url, "", ""
    role = {"callers": run_callers, "proxy": run_proxy, "dashboard": run_dashboard}[args.role]
    result = bench_calls.run(role(args))
    if args.out:
        Path(args.out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
