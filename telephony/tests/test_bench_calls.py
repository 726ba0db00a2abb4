"""bench/calls.py end to end, small: both load generators place real calls through uvicorn serving our app,
with the Realtime engine against their fake, and agree on what they measured (the 100-call figures in
docs/benchmarks.md rest on the lean one carrying the same calls as the full one)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
]


def bench_calls(loadgen: str, tmp_path: Path) -> dict:
    """Two calls of 8 s each (a greeting and a line or two), on a fresh SQLite database."""
    command = [sys.executable, str(ROOT / "bench" / "calls.py"), "--servers", "uvicorn-uvloop", "--calls", "2"]
    command += ["--duration", "8", "--ramp", "0.5", "--loadgen", loadgen, "--workdir", str(tmp_path / loadgen)]
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False)  # noqa: S603
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["runs"][0]


@pytest.mark.parametrize("loadgen", ["full", "lean"])
def test_each_load_generator_carries_whole_calls_and_times_both_directions(loadgen, tmp_path):
    run = bench_calls(loadgen, tmp_path)
    assert run["failed"] == 0, run["errors"]
    assert run["frames_lost"] == [0, 0]
    assert run["late_frames"] == 0
    assert run["turns"] >= 2  # both callers were answered at least once after the greeting
    inbound, outbound = run["frames_matched"]
    assert inbound > 2 * 5 * 50  # at least 5 s of 20 ms frames per call reached the fake, each timed
    assert outbound == run["media_frames"] > 0  # every answer chunk the fake sent reached a caller, timed
    assert run["inbound_ms_p50"] is not None and run["outbound_first_ms_p50"] is not None


@pytest.mark.skipif(
    not os.environ.get("REDIS_URL") or not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="two server processes share live updates through Redis and the calls through PostgreSQL",
)
def test_two_server_processes_share_the_calls_as_production_runs_them(tmp_path):
    from urllib.parse import urlsplit, urlunsplit

    redis_url = urlunsplit(urlsplit(os.environ["REDIS_URL"])._replace(path="/14"))  # its summaries wait in their own db
    command = [sys.executable, str(ROOT / "bench" / "calls.py"), "--servers", "uvicorn-uvloop", "--calls", "6"]
    command += ["--duration", "6", "--ramp", "1", "--loadgen", "lean", "--workdir", str(tmp_path)]
    command += ["--workers", "2", "--redis-url", redis_url, "--database-url", os.environ["DATABASE_URL"]]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)  # noqa: S603
    finally:
        redis.Redis.from_url(redis_url).flushdb()  # the summaries no worker will take
    assert done.returncode == 0, done.stderr[-3000:]
    run = json.loads(done.stdout.strip().splitlines()[-1])["runs"][0]
    assert run["server_processes"] == 2
    assert run["failed"] == 0, run["errors"]
    assert run["frames_lost"] == [0, 0]
    assert run["late_frames"] == 0
    assert run["cpu_s_per_call_minute"] > 0  # the workers' CPU, not the idle supervisor's
