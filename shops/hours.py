"""When a shop is open: pure functions over its weekly hours, closed dates and time zone.

Everything here takes the moment to reason about (`now`) as an argument, so the answers to "are you
open now?", "how late today?" and "when do you open tomorrow?" are testable at any instant (split
shifts, holidays, DST switches, a Friday night before a closed weekend).

A weekly window whose closing time is not after its opening time (22:00–02:00) runs past midnight into
the next day; it belongs to the day it opens on, so a closure on that day cancels the whole window.
All comparisons between instants are made in UTC: aware datetimes that share a `ZoneInfo` compare by
wall-clock time in Python, which is wrong in the repeated hour when the clocks go back.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shops.models import Shop

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Windows closer than this count as one stretch (a shop open 00:00–23:59 every day is never "closed").
CONTIGUOUS = dt.timedelta(minutes=1)
# How far ahead we look for the next opening (a long vacation still gets an answer).
HORIZON_DAYS = 60


@dataclass(frozen=True)
class Window:
    """One weekly opening window: weekday 0=Monday, local wall-clock times."""

    weekday: int
    opens: dt.time
    closes: dt.time

    @property
    def overnight(self) -> bool:
        return self.closes <= self.opens


@dataclass(frozen=True)
class Period:
    """One concrete opening: aware datetimes in the shop's time zone."""

    start: dt.datetime
    end: dt.datetime

    def contains(self, when: dt.datetime) -> bool:
        return _utc(self.start) <= _utc(when) < _utc(self.end)


@dataclass(frozen=True)
class Schedule:
    tz: zoneinfo.ZoneInfo
    windows: tuple[Window, ...] = ()
    closed: frozenset[dt.date] = frozenset()
    closed_reasons: tuple[tuple[dt.date, str], ...] = field(default=(), compare=False)

    @classmethod
    def build(
        cls,
        tz: str | zoneinfo.ZoneInfo,
        windows: Iterable[tuple[int, dt.time, dt.time]],
        closed: Iterable[dt.date | tuple[dt.date, str]] = (),
    ) -> Schedule:
        zone = zoneinfo.ZoneInfo(tz) if isinstance(tz, str) else tz
        reasons = [(c, "") if isinstance(c, dt.date) else (c[0], c[1]) for c in closed]
        return cls(
            tz=zone,
            windows=tuple(sorted((Window(w, o, c) for w, o, c in windows), key=lambda w: (w.weekday, w.opens))),
            closed=frozenset(d for d, _ in reasons),
            closed_reasons=tuple(sorted(reasons)),
        )

    def reason_closed(self, day: dt.date) -> str:
        return next((reason for d, reason in self.closed_reasons if d == day), "")

    @property
    def has_hours(self) -> bool:
        return bool(self.windows)


@dataclass(frozen=True)
class OpenStatus:
    """What a receptionist needs to answer "are you open?" at one instant."""

    open_now: bool
    closes_at: dt.datetime | None  # end of the current stretch, when open
    next_open: dt.datetime | None  # start of the next stretch, when closed (None: no hours in sight)
    closed_today_reason: str = ""  # a closed date today, with its reason if any ("Thanksgiving")
    closed_today: bool = False


# ---------------------------------------------------------------------------------------------
# Loading (the only functions here that touch the database)
# ---------------------------------------------------------------------------------------------
def schedule_for(shop: Shop, *, today: dt.date | None = None) -> Schedule:
    """The shop's schedule: its weekly windows and its closed dates from `today` on (two queries)."""
    start = today or shop.local_now().date()
    windows = shop.hours.values_list("weekday", "opens_at", "closes_at")
    closed = shop.closed_dates.filter(date__gte=start - dt.timedelta(days=1)).values_list("date", "reason")
    return Schedule.build(shop.tz, list(windows), [(d, r) for d, r in closed])


async def aschedule_for(shop: Shop, *, today: dt.date | None = None) -> Schedule:
    start = today or shop.local_now().date()
    windows = [w async for w in shop.hours.values_list("weekday", "opens_at", "closes_at")]
    closed = [
        (d, r)
        async for d, r in shop.closed_dates.filter(date__gte=start - dt.timedelta(days=1)).values_list("date", "reason")
    ]
    return Schedule.build(shop.tz, windows, closed)


# ---------------------------------------------------------------------------------------------
# Pure logic
# ---------------------------------------------------------------------------------------------
def _utc(when: dt.datetime) -> dt.datetime:
    if when.tzinfo is None:
        raise ValueError("naive datetime: pass an aware datetime (timezone.now())")
    return when.astimezone(dt.UTC)


def _at(day: dt.date, time: dt.time, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    # A wall-clock time that does not exist (02:30 on the spring-forward night) resolves to the
    # instant an hour later, as zoneinfo does with fold=0; one that exists twice takes the first.
    naive = dt.datetime.combine(day, time)
    return naive.replace(tzinfo=tz).astimezone(dt.UTC).astimezone(tz)


def periods_on(schedule: Schedule, day: dt.date) -> list[Period]:
    """The openings that *start* on `day` (local date), none if it is a closed date."""
    if day in schedule.closed:
        return []
    periods = []
    for window in schedule.windows:
        if window.weekday != day.weekday():
            continue
        end_day = day + dt.timedelta(days=1) if window.overnight else day
        periods.append(Period(_at(day, window.opens, schedule.tz), _at(end_day, window.closes, schedule.tz)))
    return sorted(periods, key=lambda p: _utc(p.start))


def _periods_from(schedule: Schedule, first_day: dt.date, days: int) -> Iterator[Period]:
    for offset in range(days):
        yield from periods_on(schedule, first_day + dt.timedelta(days=offset))


def _stretches(schedule: Schedule, first_day: dt.date, days: int) -> list[Period]:
    """Openings from `first_day` on, contiguous ones (split shifts with no gap, 23:59→00:00) merged."""
    merged: list[Period] = []
    for period in _periods_from(schedule, first_day, days):
        if merged and _utc(period.start) - _utc(merged[-1].end) <= CONTIGUOUS:
            if _utc(period.end) > _utc(merged[-1].end):
                merged[-1] = Period(merged[-1].start, period.end)
            continue
        merged.append(period)
    return merged


def current_stretch(schedule: Schedule, now: dt.datetime) -> Period | None:
    """The opening stretch `now` falls in (it may have started yesterday evening), or None."""
    local = now.astimezone(schedule.tz)
    # A week and a bit, so a shop open around the clock reports a closing time a week out, not tonight.
    for stretch in _stretches(schedule, local.date() - dt.timedelta(days=1), 9):
        if stretch.contains(now):
            return stretch
    return None


def is_open(schedule: Schedule, when: dt.datetime) -> bool:
    return current_stretch(schedule, when) is not None


def next_opening(schedule: Schedule, now: dt.datetime, *, horizon_days: int = HORIZON_DAYS) -> dt.datetime | None:
    """The start of the first stretch that begins after `now`, or None if none within the horizon."""
    local = now.astimezone(schedule.tz)
    for stretch in _stretches(schedule, local.date() - dt.timedelta(days=1), horizon_days + 1):
        if _utc(stretch.start) > _utc(now):
            return stretch.start
    return None


def open_status(schedule: Schedule, now: dt.datetime) -> OpenStatus:
    local_day = now.astimezone(schedule.tz).date()
    stretch = current_stretch(schedule, now)
    closed_today = local_day in schedule.closed
    return OpenStatus(
        open_now=stretch is not None,
        closes_at=stretch.end if stretch else None,
        next_open=None if stretch else next_opening(schedule, now),
        closed_today_reason=schedule.reason_closed(local_day) if closed_today else "",
        closed_today=closed_today,
    )


def hours_on(schedule: Schedule, day: dt.date) -> list[tuple[dt.time, dt.time]]:
    """The local opening windows of `day` as (opens, closes) times; empty when closed that day."""
    return [
        (p.start.astimezone(schedule.tz).time(), p.end.astimezone(schedule.tz).time())
        for p in periods_on(schedule, day)
    ]


def next_open_day(schedule: Schedule, after: dt.date, *, horizon_days: int = HORIZON_DAYS) -> dt.date | None:
    """The first local date after `after` with any opening."""
    for offset in range(1, horizon_days + 1):
        day = after + dt.timedelta(days=offset)
        if periods_on(schedule, day):
            return day
    return None


def upcoming_closures(schedule: Schedule, today: dt.date, *, days: int = HORIZON_DAYS) -> list[tuple[dt.date, str]]:
    """Closed dates from `today` to `today + days`, with their reasons, in date order."""
    last = today + dt.timedelta(days=days)
    return [(d, r) for d, r in schedule.closed_reasons if today <= d <= last]


# ---------------------------------------------------------------------------------------------
# Saying it out loud
# ---------------------------------------------------------------------------------------------
def format_time(value: dt.time | dt.datetime) -> str:
    """'5:30 PM', '8 AM', 'noon', 'midnight': how a person says a time on the phone."""
    t = value.timetz() if isinstance(value, dt.datetime) else value
    if t.hour == 0 and t.minute == 0:
        return "midnight"
    if t.hour == 12 and t.minute == 0:
        return "noon"
    hour = t.hour % 12 or 12
    suffix = "AM" if t.hour < 12 else "PM"
    return f"{hour} {suffix}" if t.minute == 0 else f"{hour}:{t.minute:02d} {suffix}"


def describe_windows(windows: list[tuple[dt.time, dt.time]]) -> str:
    """'7:30 AM to 5:30 PM', or '8 AM to noon and 1 PM to 5 PM' for a split shift; '' when none."""
    spans = [f"{format_time(o)} to {format_time(c)}" for o, c in windows]
    if len(spans) <= 2:
        return " and ".join(spans)
    return ", ".join(spans[:-1]) + f", and {spans[-1]}"


def relative_day(day: dt.date, today: dt.date) -> str:
    """'today', 'tomorrow', 'Saturday' (within a week), else 'Saturday, December 6'."""
    delta = (day - today).days
    if delta == 0:
        return "today"
    if delta == 1:
        return "tomorrow"
    if 1 < delta < 7:
        return WEEKDAYS[day.weekday()]
    return f"{WEEKDAYS[day.weekday()]}, {day:%B} {day.day}"


def describe_week(schedule: Schedule) -> str:
    """The regular weekly hours in one breath, consecutive days with the same hours grouped.

    'Monday through Friday 7:30 AM to 5:30 PM, and Saturday 8 AM to 1 PM. Closed Sunday.'
    """
    by_day: list[tuple[tuple[dt.time, dt.time], ...]] = [
        tuple((w.opens, w.closes) for w in schedule.windows if w.weekday == day) for day in range(7)
    ]
    groups: list[tuple[int, int, tuple[tuple[dt.time, dt.time], ...]]] = []
    for day, windows in enumerate(by_day):
        if groups and groups[-1][2] == windows and groups[-1][1] == day - 1:
            groups[-1] = (groups[-1][0], day, windows)
        else:
            groups.append((day, day, windows))

    def days(first: int, last: int) -> str:
        if first == last:
            return WEEKDAYS[first]
        joiner = " and " if last == first + 1 else " through "
        return f"{WEEKDAYS[first]}{joiner}{WEEKDAYS[last]}"

    open_parts = [f"{days(a, b)} {describe_windows(list(w))}" for a, b, w in groups if w]
    closed_parts = [days(a, b) for a, b, w in groups if not w]
    if not open_parts:
        return ""
    text = open_parts[0] if len(open_parts) == 1 else ", ".join(open_parts[:-1]) + f", and {open_parts[-1]}"
    if closed_parts:
        text += ". Closed " + " and ".join(closed_parts)
    return text + "."
