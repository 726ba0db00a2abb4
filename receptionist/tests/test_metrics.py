"""/metrics: Prometheus text read from the CallLog table at scrape time, behind METRICS_TOKEN."""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from calls.models import CallLog
from calls.tests.factories import CallLogFactory
from receptionist.celery import app as celery_app
from shops.tests.factories import ShopFactory

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.REDIS_URL = ""


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def ago(**kwargs: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(**kwargs)


# ---------------------------------------------------------------------------------------------
# Who may read it
# ---------------------------------------------------------------------------------------------
def test_it_does_not_exist_outside_debug_without_a_token(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers=AUTH).status_code == 404


def test_it_is_open_in_debug_without_a_token(client, settings):
    settings.METRICS_TOKEN = ""
    settings.DEBUG = True
    assert client.get("/metrics").status_code == 200


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer", "Bearer ☃"]
)
def test_it_refuses_a_missing_or_wrong_token(client, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"receptionist_" not in response.content


def test_it_is_not_redirected_to_https_like_the_health_probes(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/metrics", headers=AUTH).status_code == 200
    assert client.get("/accounts/login/").status_code == 301


def test_it_speaks_openmetrics_to_a_scraper_that_asks_for_it(client):
    response = client.get("/metrics", headers={**AUTH, "Accept": "application/openmetrics-text; version=1.0.0"})
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert b"# TYPE receptionist_first_response_seconds gaugehistogram" in response.content
    assert response.content.endswith(b"# EOF\n")


# ---------------------------------------------------------------------------------------------
# What it says
# ---------------------------------------------------------------------------------------------
def test_it_counts_the_voice_calls_open_now(client):
    shop = ShopFactory()
    CallLogFactory(shop=shop, status=CallLog.Status.RINGING)
    CallLogFactory.create_batch(2, shop=shop, status=CallLog.Status.IN_PROGRESS)
    CallLogFactory(shop=ShopFactory(), channel=CallLog.Channel.BROWSER, status=CallLog.Status.IN_PROGRESS)
    CallLogFactory(shop=shop, status=CallLog.Status.COMPLETED, ended_at=ago(minutes=1), outcome="resolved")
    CallLogFactory(shop=shop, channel=CallLog.Channel.CHAT, status=CallLog.Status.IN_PROGRESS)  # has no end
    CallLogFactory(shop=shop, status=CallLog.Status.IN_PROGRESS, started_at=ago(hours=3))  # never closed

    samples = scrape(client)

    assert value(samples, "receptionist_calls_active", status="ringing", channel="phone") == 1
    assert value(samples, "receptionist_calls_active", status="in_progress", channel="phone") == 2
    assert value(samples, "receptionist_calls_active", status="in_progress", channel="browser") == 1
    assert value(samples, "receptionist_calls_active", status="ringing", channel="browser") == 0
    assert ("receptionist_calls_active", (("channel", "chat"), ("status", "in_progress"))) not in samples
    assert value(samples, "receptionist_calls_stale", channel="phone") == 1


def test_it_counts_calls_that_ended_in_the_window_by_outcome(client):
    shop = ShopFactory()
    for outcome, minutes in [("resolved", 1), ("resolved", 14), ("transferred", 5), ("resolved", 16), ("", 2)]:
        CallLogFactory(
            shop=shop,
            started_at=ago(minutes=minutes + 3),
            ended_at=ago(minutes=minutes),
            status=CallLog.Status.COMPLETED,
            outcome=outcome,
        )

    samples = scrape(client)

    assert value(samples, "receptionist_calls_ended", channel="phone", outcome="resolved") == 2
    assert value(samples, "receptionist_calls_ended", channel="phone", outcome="transferred") == 1
    assert value(samples, "receptionist_calls_ended", channel="phone", outcome="none") == 1
    assert value(samples, "receptionist_calls_ended", channel="phone", outcome="failed") == 0
    assert value(samples, "receptionist_calls_ended", channel="chat", outcome="resolved") == 0
    assert value(samples, "receptionist_metrics_window_seconds") == 900


def test_it_counts_answered_calls_and_openai_fallbacks_among_calls_started_in_the_window(client):
    shop = ShopFactory()
    CallLogFactory(shop=shop, engine="")  # rang; no conversation took it
    CallLogFactory(shop=shop, engine="openai")
    CallLogFactory(shop=shop, engine="local", fallback_reason="openai realtime unavailable: ConnectError")
    CallLogFactory(shop=shop, engine="local")
    CallLogFactory(shop=shop, engine="local", fallback_reason="timeout", started_at=ago(minutes=20))  # before

    samples = scrape(client)

    assert value(samples, "receptionist_calls_started", channel="phone") == 4
    assert value(samples, "receptionist_calls_answered", channel="phone") == 3
    assert value(samples, "receptionist_openai_calls", channel="phone") == 2
    assert value(samples, "receptionist_openai_fallbacks", channel="phone") == 1
    assert value(samples, "receptionist_calls_started", channel="browser") == 0


def test_it_builds_the_first_response_histogram_from_calls_started_in_the_window(client):
    shop = ShopFactory()
    for ms in (200, 600, 900, 1000, 1400, 4000, 9000, None):
        CallLogFactory(shop=shop, engine="local", first_response_ms=ms)
    CallLogFactory(shop=shop, engine="local", first_response_ms=100, started_at=ago(hours=1))

    samples = scrape(client)

    def bucket(le: str) -> float:
        return value(samples, "receptionist_first_response_seconds_bucket", channel="phone", le=le)

    assert [bucket(le) for le in ("0.25", "0.5", "0.75", "1.0", "1.5", "2.0", "3.0", "5.0", "+Inf")] == [
        1,
        1,
        2,
        4,
        5,
        5,
        5,
        6,
        7,
    ]
    assert value(samples, "receptionist_first_response_seconds_gcount", channel="phone") == 7
    assert value(samples, "receptionist_first_response_seconds_gsum", channel="phone") == pytest.approx(17.1)
    assert value(samples, "receptionist_first_response_seconds_bucket", channel="chat", le="+Inf") == 0


def test_it_reads_the_database_in_the_same_three_queries_however_many_calls(client, django_assert_max_num_queries):
    shops = ShopFactory.create_batch(3)
    for i in range(60):
        CallLogFactory(
            shop=shops[i % 3],
            channel=CallLog.Channel.values[i % 3],
            status=CallLog.Status.COMPLETED if i % 2 else CallLog.Status.IN_PROGRESS,
            ended_at=ago(minutes=1) if i % 2 else None,
            outcome=CallLog.Outcome.values[i % 6] if i % 2 else "",
            first_response_ms=100 * i,
        )

    with django_assert_max_num_queries(3):
        samples = scrape(client)

    assert sum(v for (name, _), v in samples.items() if name == "receptionist_calls_started") == 60


def test_it_includes_the_process_metrics(client):
    names = {name for name, _ in scrape(client)}
    assert "process_resident_memory_bytes" in names or "python_info" in names
    assert "python_gc_collections_total" in names


def test_it_leaves_out_the_celery_queue_without_redis(client):
    assert not any(name == "receptionist_celery_queue_length" for name, _ in scrape(client))


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (a real Redis)")
def test_it_reports_the_tasks_waiting_in_the_celery_queue_in_redis(client, settings, monkeypatch):
    import redis

    settings.REDIS_URL = os.environ["REDIS_URL"]
    queue = f"metrics-test-{uuid.uuid4().hex}"  # our own queue: workers of other tests never drain it
    monkeypatch.setitem(celery_app.conf, "task_default_queue", queue)
    r = redis.Redis.from_url(settings.REDIS_URL)
    keys = [queue, f"{queue}\x06\x163"]
    try:
        r.lpush(keys[0], "task-1", "task-2", "task-3")
        r.lpush(keys[1], "urgent-task")
        samples = scrape(client)
    finally:
        r.delete(*keys)
        r.close()

    assert value(samples, "receptionist_celery_queue_length", queue=queue) == 4


def test_it_still_answers_when_redis_does_not(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    samples = scrape(client)
    assert not any(name == "receptionist_celery_queue_length" for name, _ in samples)
    assert any(name == "receptionist_calls_started" for name, _ in samples)
