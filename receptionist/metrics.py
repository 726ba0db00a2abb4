"""`/metrics`: Prometheus text format for the operator's scraper.

Production runs several processes (uvicorn workers, Celery workers), so counters kept in one process's
memory would each tell a fraction of the story. Call metrics are read from the database when the
scraper asks (`CallMetricsCollector`, three indexed queries whatever the number of calls), so every
process answers the same; only the `process_*`/`python_*` metrics are the answering process's own.

Totals since the beginning of time would be a count over the whole CallLog table on every scrape
(measured: ~0.5 s + 0.3 s at 500k calls on PostgreSQL here), and a row's outcome can still change after
the call ends (a dropped stream becomes "transferred"), which a Prometheus counter cannot take back. So
call metrics are gauges over a sliding `WINDOW` — "calls that ended in the last 15 minutes, by outcome" —
read through the `started_at`, `ended_at` and open-status indexes. Alert rules: docs/runbooks/alerts.md.

    receptionist_calls_active{status,channel}        voice calls ringing / in progress now (started less
                                                     than STALE_AFTER ago; chat sessions have no end)
    receptionist_calls_stale{channel}                voice calls still open but started longer ago than
                                                     any call lasts (never closed)
    receptionist_calls_started{channel}              started in the window
    receptionist_calls_answered{channel}             … and taken by a conversation (an engine was chosen)
    receptionist_calls_ended{channel,outcome}        ended in the window
    receptionist_openai_calls{channel}               started in the window on OpenAI (including fallen back)
    receptionist_openai_fallbacks{channel}           … that fell back to the offline engine (fallback_reason)
    receptionist_first_response_seconds{channel}     gauge histogram: caller stops → first reply audio,
                                                     calls started in the window
    receptionist_celery_queue_length{queue}          tasks waiting in Redis (absent without REDIS_URL)
    receptionist_metrics_window_seconds              WINDOW, for dashboards and alert rules

Access: with `METRICS_TOKEN` set, `Authorization: Bearer <token>` (compared in constant time; 401
otherwise). Without it the endpoint is open in DEBUG and does not exist (404) outside DEBUG, so a
forgotten token never publishes call volumes. The SSL redirect skips it, like the health probes: a
scraper on the private network speaks plain HTTP.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from calls.models import CallLog

logger = logging.getLogger(__name__)

WINDOW = dt.timedelta(minutes=15)
# Longer than the longest call a shop can allow (max_call_seconds ≤ 3600): an open row older than this
# was never closed (a server killed mid-call and no status callback).
STALE_AFTER = dt.timedelta(hours=2)
# Upper bounds in seconds. The target is under 1 s; the offline engine usually answers in 0.3-0.8 s.
FIRST_RESPONSE_BUCKETS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
# kombu's Redis transport keeps a queue's tasks in one list per priority step (0, 3, 6, 9), the
# non-zero ones named "<queue>\x06\x16<priority>".
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")

_OPEN = [CallLog.Status.RINGING, CallLog.Status.IN_PROGRESS]
# A chat session has no end (the page just stops asking), so only voice calls are counted while open.
_VOICE = [CallLog.Channel.PHONE, CallLog.Channel.BROWSER]
_ON_OPENAI = Q(engine=CallLog.Engine.OPENAI) | ~Q(fallback_reason="")


def _bucket_key(bound: float) -> str:
    return f"le_{round(bound * 1000)}"


class CallMetricsCollector(Collector):
    """Call metrics from the CallLog table, read on each scrape (three queries)."""

    def __init__(self, now: Callable[[], dt.datetime] = timezone.now) -> None:
        self._now = now

    def collect(self) -> Iterator[Metric]:
        now = self._now()
        yield from self._open_calls(now)
        yield from self._recent_calls(now - WINDOW)
        yield from self._ended_calls(now - WINDOW)
        depth = celery_queue_length()
        if depth is not None:
            queue = GaugeMetricFamily(
                "receptionist_celery_queue_length", "Celery tasks waiting in the Redis broker.", labels=["queue"]
            )
            queue.add_metric([celery_queue_name()], depth)
            yield queue
        yield GaugeMetricFamily(
            "receptionist_metrics_window_seconds",
            "The sliding window of the receptionist_calls_* window metrics, in seconds.",
            value=WINDOW.total_seconds(),
        )

    def _open_calls(self, now: dt.datetime) -> Iterator[Metric]:
        cutoff = now - STALE_AFTER
        rows = (
            CallLog.objects.filter(status__in=_OPEN, channel__in=_VOICE)
            .values("status", "channel")
            .annotate(
                active=Count("id", filter=Q(started_at__gte=cutoff)),
                stale=Count("id", filter=Q(started_at__lt=cutoff)),
            )
            .order_by()
        )
        active = GaugeMetricFamily(
            "receptionist_calls_active",
            "Voice calls ringing (webhook answered, no conversation yet) or in progress now.",
            labels=["status", "channel"],
        )
        stale = GaugeMetricFamily(
            "receptionist_calls_stale",
            f"Voice calls still open but started more than {STALE_AFTER.total_seconds() / 3600:g} h ago "
            "(never closed).",
            labels=["channel"],
        )
        counts: dict[tuple[str, str], int] = {(s, c): 0 for s in _OPEN for c in _VOICE}
        stale_counts: dict[str, int] = dict.fromkeys(_VOICE, 0)
        for row in rows:
            counts[(row["status"], row["channel"])] = row["active"]
            stale_counts[row["channel"]] = stale_counts.get(row["channel"], 0) + row["stale"]
        for (status, channel), value in counts.items():
            active.add_metric([status, channel], value)
        for channel, value in stale_counts.items():
            stale.add_metric([channel], value)
        yield active
        yield stale

    def _recent_calls(self, since: dt.datetime) -> Iterator[Metric]:
        buckets = {
            _bucket_key(bound): Count("id", filter=Q(first_response_ms__lte=round(bound * 1000)))
            for bound in FIRST_RESPONSE_BUCKETS
        }
        rows: dict[str, dict[str, Any]] = {
            row["channel"]: dict(row)
            for row in CallLog.objects.filter(started_at__gte=since)
            .values("channel")
            .annotate(
                started=Count("id"),
                answered=Count("id", filter=~Q(engine="")),
                openai=Count("id", filter=_ON_OPENAI),
                fallbacks=Count("id", filter=~Q(fallback_reason="")),
                responded=Count("first_response_ms"),
                response_ms=Sum("first_response_ms"),
                **buckets,
            )
            .order_by()
        }
        window = f"{WINDOW.total_seconds() / 60:g} minutes"
        families = {
            "started": GaugeMetricFamily(
                "receptionist_calls_started", f"Calls started in the last {window}.", labels=["channel"]
            ),
            "answered": GaugeMetricFamily(
                "receptionist_calls_answered",
                f"Calls started in the last {window} that a conversation took (an engine answered).",
                labels=["channel"],
            ),
            "openai": GaugeMetricFamily(
                "receptionist_openai_calls",
                f"Calls started in the last {window} on the OpenAI engine (including those that fell back).",
                labels=["channel"],
            ),
            "fallbacks": GaugeMetricFamily(
                "receptionist_openai_fallbacks",
                f"Calls started in the last {window} that fell back from OpenAI to the offline engine.",
                labels=["channel"],
            ),
        }
        latency = GaugeHistogramMetricFamily(
            "receptionist_first_response_seconds",
            f"Seconds from the end of the caller's first utterance to the first audio of the reply (the "
            f"reply's latency in chat), calls started in the last {window}.",
            labels=["channel"],
        )
        for channel in CallLog.Channel.values:
            row = rows.get(channel, {})
            for key, family in families.items():
                family.add_metric([channel], row.get(key, 0))
            cumulative = [(floatToGoString(bound), row.get(_bucket_key(bound), 0)) for bound in FIRST_RESPONSE_BUCKETS]
            latency.add_metric(
                [channel],
                [*cumulative, ("+Inf", row.get("responded", 0))],
                (row.get("response_ms") or 0) / 1000,
            )
        yield from families.values()
        yield latency

    def _ended_calls(self, since: dt.datetime) -> Iterator[Metric]:
        ended = GaugeMetricFamily(
            "receptionist_calls_ended",
            f"Calls that ended in the last {WINDOW.total_seconds() / 60:g} minutes, by outcome "
            '("none" until one is recorded).',
            labels=["channel", "outcome"],
        )
        counts = {(c, o): 0 for c in CallLog.Channel.values for o in CallLog.Outcome.values}
        rows = (
            CallLog.objects.filter(ended_at__gte=since).values("channel", "outcome").annotate(n=Count("id")).order_by()
        )
        for row in rows:
            counts[(row["channel"], row["outcome"] or "none")] = row["n"]
        for (channel, outcome), value in counts.items():
            ended.add_metric([channel, outcome], value)
        yield ended


def celery_queue_name() -> str:
    from receptionist.celery import app

    return str(app.conf.task_default_queue or "celery")


def celery_queue_length() -> int | None:
    """Tasks waiting in the Redis broker's default queue; None without Redis (eager Celery) or when
    Redis does not answer (the /readyz probe and its alert cover that)."""
    if not settings.REDIS_URL:
        return None
    import redis

    queue = celery_queue_name()
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        try:
            with client.pipeline(transaction=False) as pipe:
                for suffix in _PRIORITY_SUFFIXES:
                    pipe.llen(queue + suffix)
                lengths = pipe.execute()
        finally:
            client.close()
    except redis.RedisError as exc:
        logger.warning("metrics: Celery queue length unavailable: %s", exc)
        return None
    return sum(int(n) for n in lengths)


REGISTRY = CollectorRegistry(auto_describe=False)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)
REGISTRY.register(CallMetricsCollector())


def _authorized(request: HttpRequest, token: str) -> bool:
    scheme, _, supplied = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(supplied.strip().encode(), token.encode())


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """The registry in Prometheus text format, for a scraper holding METRICS_TOKEN (see module doc)."""
    token = settings.METRICS_TOKEN
    if not token:
        if not settings.DEBUG:
            raise Http404("Metrics are off: set METRICS_TOKEN.")
    elif not _authorized(request, token):
        response = HttpResponse("A valid metrics token is required.", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    # Prometheus asks for OpenMetrics, which has a type for the windowed latency histogram; anything
    # else gets the classic text format.
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encode(REGISTRY), content_type=content_type)
