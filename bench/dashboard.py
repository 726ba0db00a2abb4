"""Benchmark: the owner dashboard's call list with 100,000 calls in one shop.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/dashboard.py [--calls N] [--runs N]

Bulk-creates the calls in the database DATABASE_URL names (SQLite by default; migrated first), then
times GET /shops/<slug>/calls/ through Django's test client — first page, a filtered page and a deep
keyset page — and prints one JSON line (server time per request, p50/p95, queries per request). With
--write it also replaces the "## Dashboard calls list (bench/dashboard.py)" section of
docs/benchmarks.md. The bench shop and its calls are deleted afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "receptionist.settings")
os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")

SECTION = "## Dashboard calls list (bench/dashboard.py)"
SLUG = "bench-dashboard"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def seed(n_calls: int):
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from calls.models import CallLog
    from shops.models import Membership, Shop

    Shop.objects.filter(slug=SLUG).delete()
    shop = Shop.objects.create(
        name="Bench Dashboard", slug=SLUG, phone_number="+15559990100", timezone="America/Chicago"
    )
    user, _ = get_user_model().objects.get_or_create(username="bench-dashboard@example.com")
    Membership.objects.create(user=user, shop=shop, role=Membership.Role.OWNER)
    rng = random.Random(7)
    vehicles = ["Civic", "F-150", "Camry"]
    intents = ["CHECK_STATUS", "GET_HOURS", "GET_LOCATION", "GET_SERVICES", "TRANSFER_HUMAN", "UNKNOWN"]
    outcomes = [o for o, _ in CallLog.Outcome.choices]
    now = timezone.now()
    batch = []
    for i in range(n_calls):
        started = now - dt.timedelta(seconds=i * 90 + rng.randint(0, 60))  # ~100 days of calls
        batch.append(
            CallLog(
                shop=shop,
                call_sid=f"CABENCH{i:026d}",
                channel=rng.choice(["phone", "phone", "phone", "chat", "browser"]),
                status="completed",
                caller_number=f"+1555{rng.randint(0, 9_999_999):07d}",
                started_at=started,
                ended_at=started + dt.timedelta(seconds=95),
                duration_seconds=rng.randint(15, 400),
                engine=rng.choice(["openai", "local"]),
                intent=rng.choice(intents),
                outcome=rng.choice(outcomes),
                summary=f"Caller asked about work order {rng.randint(10000, 99999)} for a {rng.choice(vehicles)}.",
                first_response_ms=rng.randint(300, 1500),
            )
        )
        if len(batch) == 5000:
            CallLog.objects.bulk_create(batch)
            batch = []
    if batch:
        CallLog.objects.bulk_create(batch)
    return shop, user


def measure(client, url: str, runs: int, headers: dict | None = None) -> tuple[list[float], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # warm caches (templates, connection)
    timings = []
    queries = 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            response = client.get(url, headers=headers or {})
            timings.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
        queries = len(ctx.captured_queries)
    return timings, queries


def write_section(result: dict) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    intro = (
        "# Benchmarks\n\n"
        "Numbers measured on this project's 2-core development/CI machine. Each section names the script "
        "that produced it, so anyone can re-run it and compare; scripts print one JSON line.\n"
    )
    body = (
        f"{SECTION}\n\n"
        f"The call list (`/shops/<slug>/calls/`) with {result['calls']:,} calls in one shop on "
        f"{result['database']}, timed through Django's test client (server time: URL resolving, middleware, "
        f"queries, template rendering), {result['runs']} requests per variant.\n\n"
        "| page | p50 ms | p95 ms | queries |\n|---|---|---|---|\n"
        + "".join(
            f"| {name} | {v['p50_ms']} | {v['p95_ms']} | {v['queries']} |\n" for name, v in result["pages"].items()
        )
        + "\nWhy it stays flat: the list pages by keyset on `(started_at, id)` (the `call_shop_started_idx` "
        "index), so page 1 and page 1,000 both read 51 rows; the total is counted only on the unfiltered "
        "first page and only up to 1,000 "
        "(a count over a `LIMIT 1001` subquery) instead of counting every call; rows load only the "
        "columns the table shows. The number of queries does not depend on the number of rows "
        "(`calls/tests/test_dashboard_calls.py` checks 10 vs 100).\n\n"
        f"`{json.dumps(result)}`\n"
    )
    # Other engineers add their own sections concurrently: re-read right before writing, touch only ours.
    text = path.read_text() if path.exists() else intro
    if SECTION in text:
        start = text.index(SECTION)
        nxt = text.find("\n## ", start + len(SECTION))
        text = text[:start] + body + (text[nxt + 1 :] if nxt != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + body
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings

    # Production serves collected, hashed static files; the bench times views, not collectstatic.
    settings.STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    from shops.models import Shop

    t0 = time.perf_counter()
    shop, user = seed(args.calls)
    seed_s = time.perf_counter() - t0
    try:
        client = Client()
        client.force_login(user)
        base = f"/shops/{shop.slug}/calls/"
        from calls.models import CallLog
        from calls.selectors import _cursor

        # The cursor of the 1,000th newest call: what "Older →" leads to after 20 pages.
        deep_cursor = _cursor(CallLog.objects.filter(shop=shop).order_by("-started_at", "-id")[1000])
        variants = {
            "first page": base,
            "filtered (outcome + intent + search)": base + "?outcome=transferred&intent=CHECK_STATUS&q=Civic",
            "deep keyset page (~1,000 calls in)": f"{base}?older={deep_cursor}",
            "htmx fragment (filter by channel)": base + "?channel=phone",
        }
        htmx = {"HX-Request": "true", "HX-Target": "call-results"}
        pages = {}
        all_timings: list[float] = []
        for name, url in variants.items():
            timings, queries = measure(client, url, args.runs, htmx if name.startswith("htmx") else None)
            all_timings += timings
            pages[name] = {
                "p50_ms": round(statistics.median(timings), 1),
                "p95_ms": round(percentile(timings, 95), 1),
                "queries": queries,
            }
        engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        result = {
            "bench": "dashboard_calls_list",
            "calls": args.calls,
            "runs": args.runs,
            "database": engine,
            "python": platform.python_version(),
            "seed_seconds": round(seed_s, 1),
            "p50_ms": round(statistics.median(all_timings), 1),
            "p95_ms": round(percentile(all_timings, 95), 1),
            "pages": pages,
        }
        print(json.dumps(result))
        if args.write:
            write_section(result)
    finally:
        Shop.objects.filter(slug=SLUG).delete()


if __name__ == "__main__":
    main()
