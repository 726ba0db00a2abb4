"""Reads for the call pages: scoped lookups, filtered lists with keyset pagination, today's activity and
the analytics aggregates (computed in the database, never by looping over rows in Python)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Avg, Case, Count, Exists, OuterRef, Q, QuerySet, Value, When
from django.db.models.functions import ExtractIsoWeekDay, TruncDate, TruncTime
from django.http import Http404
from django.utils import timezone

from calls.models import CallLog
from shops.models import BusinessHours, ClosedDate, Shop

LIST_COLUMNS = (
    "id",
    "shop_id",
    "call_sid",
    "channel",
    "status",
    "caller_number",
    "started_at",
    "ended_at",
    "duration_seconds",
    "engine",
    "intent",
    "outcome",
    "summary",
    "first_response_ms",
    "callback_number",
)


def get_call_for_user(user: User | AnonymousUser, slug: str, pk: int) -> CallLog:
    """The call `pk` of shop `slug` if the user is a member of that shop, else 404."""
    if not user.is_authenticated:
        raise Http404("No such call.")
    call = (
        CallLog.objects.filter(pk=pk, shop__slug=slug, shop__memberships__user_id=user.pk)
        .select_related("shop")
        .first()
    )
    if call is None:
        raise Http404("No such call.")
    return call


# ---------------------------------------------------------------------------------------------
# Filtered list
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CallFilters:
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    intent: str = ""
    outcome: str = ""
    channel: str = ""
    q: str = ""


def _local_midnight(shop: Shop, day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=shop.tz)


def calls_for_shop(shop: Shop, filters: CallFilters | None = None) -> QuerySet[CallLog]:
    """The shop's calls matching `filters`, newest first. Dates are the shop's local days."""
    f = filters or CallFilters()
    qs = CallLog.objects.filter(shop=shop)
    if f.date_from:
        qs = qs.filter(started_at__gte=_local_midnight(shop, f.date_from))
    if f.date_to:
        qs = qs.filter(started_at__lt=_local_midnight(shop, f.date_to + dt.timedelta(days=1)))
    if f.intent:
        qs = qs.filter(intent=f.intent)
    if f.outcome:
        qs = qs.filter(outcome=f.outcome)
    if f.channel:
        qs = qs.filter(channel=f.channel)
    for word in f.q.split()[:6]:
        digits = "".join(ch for ch in word if ch.isdigit())
        if len(digits) == 4 and len(word) <= 6:  # "0123" or "-0123": the caller number's last four
            qs = qs.filter(Q(caller_number__endswith=digits) | Q(summary__icontains=word))
        else:
            qs = qs.filter(summary__icontains=word)
    return qs.order_by("-started_at", "-id")


# The conversation brain's intents (design.md), offered by the list's intent filter.
INTENTS = ["CHECK_STATUS", "GET_HOURS", "GET_LOCATION", "GET_SERVICES", "TRANSFER_HUMAN", "UNKNOWN", "GOODBYE"]


@dataclass
class Page:
    rows: list[CallLog]
    older: str | None = None  # cursor for the next (older) page
    newer: str | None = None  # cursor for the previous (newer) page
    count_label: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _cursor(call: CallLog) -> str:
    micros = int(call.started_at.timestamp() * 1_000_000)
    return f"{micros}.{call.pk}"


def _parse_cursor(value: str) -> tuple[dt.datetime, int] | None:
    try:
        micros, pk = value.split(".", 1)
        return dt.datetime.fromtimestamp(int(micros) / 1_000_000, tz=dt.UTC), int(pk)
    except (ValueError, OverflowError, OSError):
        return None


COUNT_CAP = 1000


def keyset_page(qs: QuerySet[CallLog], *, older: str = "", newer: str = "", size: int = 50, count: bool = True) -> Page:
    """One page of `qs` (ordered newest first) after the `older` cursor or before the `newer` one.

    Keyset pagination: the database seeks straight to the cursor on (shop, started_at, id) instead of
    counting and skipping rows, so page 1 and page 2,000 of 100,000 calls cost the same. The total is
    counted only on the first page, only up to COUNT_CAP ("1,000+ calls"), and only when `count`: a
    selective filter would make even a capped count read every one of the shop's calls.
    """
    rows_qs = qs.only(*LIST_COLUMNS)
    older_key = _parse_cursor(older) if older else None
    newer_key = _parse_cursor(newer) if newer else None
    if newer_key is not None:
        at, pk = newer_key
        rows = list(
            rows_qs.filter(Q(started_at__gte=at), Q(started_at__gt=at) | Q(id__gt=pk)).order_by("started_at", "id")[
                : size + 1
            ]
        )
        has_more_newer = len(rows) > size
        rows = list(reversed(rows[:size]))
        page = Page(rows=rows)
        page.newer = _cursor(rows[0]) if rows and has_more_newer else None
        page.older = _cursor(rows[-1]) if rows else None
    else:
        if older_key is not None:
            at, pk = older_key
            # (started_at, id) < (at, pk), written so the database can range-scan the index on started_at.
            rows_qs = rows_qs.filter(Q(started_at__lte=at), Q(started_at__lt=at) | Q(id__lt=pk))
        rows = list(rows_qs[: size + 1])
        page = Page(rows=rows[:size])
        page.older = _cursor(rows[size - 1]) if len(rows) > size else None
        page.newer = _cursor(rows[0]) if rows and older_key is not None else None
    total = qs.order_by()[: COUNT_CAP + 1].count() if count and not (older or newer) else None
    if total is not None:
        page.count_label = (
            f"{COUNT_CAP:,}+ calls" if total > COUNT_CAP else f"{total:,} call{'s' if total != 1 else ''}"
        )
    return page


# ---------------------------------------------------------------------------------------------
# Overview: today's calls and live activity
# ---------------------------------------------------------------------------------------------
def today_range(shop: Shop, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    local = shop.local_now(now)
    start = _local_midnight(shop, local.date())
    return start, start + dt.timedelta(days=1)


@dataclass
class Activity:
    live: list[CallLog]
    recent: list[CallLog]
    total_today: int
    outcomes: list[tuple[str, str, int]]  # (value, label, count)


def activity_for_shop(shop: Shop, now: dt.datetime | None = None) -> Activity:
    """Calls in progress and today's calls with their outcome counts (three queries)."""
    start, end = today_range(shop, now)
    now = now or timezone.now()
    live = list(
        CallLog.objects.filter(shop=shop, ended_at__isnull=True, started_at__gte=now - dt.timedelta(hours=2))
        .exclude(status=CallLog.Status.COMPLETED)
        .only(*LIST_COLUMNS)
        .order_by("-started_at", "-id")[:20]
    )
    today = CallLog.objects.filter(shop=shop, started_at__gte=start, started_at__lt=end)
    recent = list(today.only(*LIST_COLUMNS).order_by("-started_at", "-id")[:10])
    counts = dict(today.values_list("outcome").annotate(n=Count("id")).order_by())
    labels = dict(CallLog.Outcome.choices)
    outcomes = [(value, labels[value], counts.get(value, 0)) for value in labels]
    in_progress = sum(n for value, n in counts.items() if not value)
    if in_progress:
        outcomes.append(("", "In progress / no outcome yet", in_progress))
    return Activity(live=live, recent=recent, total_today=sum(counts.values()), outcomes=outcomes)


# ---------------------------------------------------------------------------------------------
# Analytics
# ---------------------------------------------------------------------------------------------
@dataclass
class Analytics:
    start: dt.date
    end: dt.date
    total: int
    per_day: list[tuple[dt.date, int]]
    by_intent: list[tuple[str, int]]
    by_outcome: list[tuple[str, str, int]]
    after_hours: int
    avg_duration: float | None
    avg_first_response: float | None

    def share(self, n: int) -> float:
        return (100.0 * n / self.total) if self.total else 0.0

    @property
    def after_hours_share(self) -> float:
        return self.share(self.after_hours)

    def outcome_share(self, value: str) -> float:
        return self.share(next((n for v, _l, n in self.by_outcome if v == value), 0))


def _in_hours_condition(shop: Shop) -> Q:
    """A Q over annotations `local_weekday` (ISO 1–7) and `local_time` that is true inside the shop's
    weekly hours. Built from the shop's few BusinessHours rows, evaluated by the database."""
    condition = Q(pk__in=[])  # matches nothing: a shop without hours is never open
    for window in BusinessHours.objects.filter(shop=shop):
        condition |= Q(
            local_weekday=window.weekday + 1, local_time__gte=window.opens_at, local_time__lt=window.closes_at
        )
    return condition


def analytics_for_shop(shop: Shop, start: dt.date, end: dt.date) -> Analytics:
    """Aggregates for the shop's calls on local days start..end (inclusive), all in the database."""
    tz = shop.tz
    qs = CallLog.objects.filter(
        shop=shop,
        started_at__gte=_local_midnight(shop, start),
        started_at__lt=_local_midnight(shop, end + dt.timedelta(days=1)),
    ).order_by()

    per_day_rows = dict(
        qs.annotate(day=TruncDate("started_at", tzinfo=tz)).values_list("day").annotate(n=Count("id")).order_by()
    )
    days = (end - start).days + 1
    per_day = [(start + dt.timedelta(days=i), per_day_rows.get(start + dt.timedelta(days=i), 0)) for i in range(days)]

    by_intent = [
        (intent or "(none)", n)
        for intent, n in qs.values_list("intent").annotate(n=Count("id")).order_by("-n", "intent")
    ]
    outcome_counts = dict(qs.values_list("outcome").annotate(n=Count("id")).order_by())
    labels = dict(CallLog.Outcome.choices)
    by_outcome = [(value, label, outcome_counts.get(value, 0)) for value, label in labels.items()]
    if outcome_counts.get(""):
        by_outcome.append(("", "No outcome yet", outcome_counts[""]))

    closed = ClosedDate.objects.filter(shop=shop, date__gte=start, date__lte=end)
    annotated = qs.annotate(
        local_weekday=ExtractIsoWeekDay("started_at", tzinfo=tz),
        local_time=TruncTime("started_at", tzinfo=tz),
        local_date=TruncDate("started_at", tzinfo=tz),
        on_closed_day=Exists(closed.filter(date=OuterRef("local_date"))),
    ).annotate(
        in_hours=Case(
            When(on_closed_day=True, then=Value(False)),
            When(_in_hours_condition(shop), then=Value(True)),
            default=Value(False),
        )
    )
    totals = annotated.aggregate(
        total=Count("id"),
        after_hours=Count("id", filter=Q(in_hours=False)),
        avg_duration=Avg("duration_seconds"),
        avg_first_response=Avg("first_response_ms"),
    )
    return Analytics(
        start=start,
        end=end,
        total=totals["total"],
        per_day=per_day,
        by_intent=by_intent,
        by_outcome=by_outcome,
        after_hours=totals["after_hours"],
        avg_duration=totals["avg_duration"],
        avg_first_response=totals["avg_first_response"],
    )
