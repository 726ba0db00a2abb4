from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from shops import hours
from shops.hours import Schedule
from shops.tests.factories import BusinessHoursFactory, ShopFactory

CHICAGO = zoneinfo.ZoneInfo("America/Chicago")
T = dt.time

# The demo shop: weekdays 7:30–17:30, Saturday 8–13, closed Sunday.
WEEK = [(d, T(7, 30), T(17, 30)) for d in range(5)] + [(5, T(8), T(13))]


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0, tz: zoneinfo.ZoneInfo = CHICAGO, fold: int = 0):
    return dt.datetime(y, m, d, hh, mm, tzinfo=tz, fold=fold)


def schedule(windows=WEEK, closed=(), tz="America/Chicago") -> Schedule:
    return Schedule.build(tz, windows, closed)


# 2026-11-23 is a Monday.
MON, TUE, WED, THU, FRI, SAT, SUN = (dt.date(2026, 11, 23) + dt.timedelta(days=i) for i in range(7))


def test_it_is_open_inside_the_days_window_and_says_when_it_closes():
    status = hours.open_status(schedule(), at(2026, 11, 24, 10, 15))
    assert status.open_now
    assert status.closes_at == at(2026, 11, 24, 17, 30)
    assert status.next_open is None


def test_it_is_closed_at_closing_time_exactly_and_open_at_opening_time_exactly():
    assert not hours.is_open(schedule(), at(2026, 11, 24, 17, 30))
    assert hours.is_open(schedule(), at(2026, 11, 24, 7, 30))


def test_it_gives_the_next_opening_the_same_morning_when_asked_after_midnight():
    status = hours.open_status(schedule(), at(2026, 11, 24, 0, 30))
    assert not status.open_now
    assert status.next_open == at(2026, 11, 24, 7, 30)
    assert hours.relative_day(status.next_open.date(), TUE) == "today"


def test_it_skips_a_closed_weekend_on_friday_evening():
    status = hours.open_status(schedule(windows=[(d, T(8), T(17)) for d in range(5)]), at(2026, 11, 27, 18, 0))
    assert not status.open_now
    assert status.next_open == at(2026, 11, 30, 8, 0)
    assert hours.relative_day(status.next_open.date(), FRI) == "Monday"


def test_it_handles_a_split_shift_lunch_break():
    split = schedule(windows=[(0, T(8), T(12)), (0, T(13), T(17))])
    lunch = hours.open_status(split, at(2026, 11, 23, 12, 20))
    assert not lunch.open_now
    assert lunch.next_open == at(2026, 11, 23, 13, 0)
    morning = hours.open_status(split, at(2026, 11, 23, 9, 0))
    assert morning.closes_at == at(2026, 11, 23, 12, 0)
    assert hours.describe_windows(hours.hours_on(split, MON)) == "8 AM to noon and 1 PM to 5 PM"


def test_it_treats_back_to_back_windows_as_one_stretch():
    split = schedule(windows=[(0, T(8), T(12)), (0, T(12), T(17))])
    assert hours.open_status(split, at(2026, 11, 23, 11, 0)).closes_at == at(2026, 11, 23, 17, 0)


def test_it_skips_a_closed_date_and_reports_its_reason():
    sched = schedule(closed=[(THU, "Thanksgiving")])
    status = hours.open_status(sched, at(2026, 11, 26, 10, 0))
    assert not status.open_now
    assert status.closed_today
    assert status.closed_today_reason == "Thanksgiving"
    assert status.next_open == at(2026, 11, 27, 7, 30)
    assert hours.hours_on(sched, THU) == []
    assert hours.upcoming_closures(sched, MON) == [(THU, "Thanksgiving")]


def test_it_looks_past_a_long_closure_for_the_next_opening():
    vacation = [dt.date(2026, 12, 1) + dt.timedelta(days=i) for i in range(20)]
    status = hours.open_status(schedule(closed=vacation), at(2026, 11, 30, 18, 0))
    assert status.next_open == at(2026, 12, 21, 7, 30)


def test_it_has_no_next_opening_without_hours():
    status = hours.open_status(schedule(windows=[]), at(2026, 11, 24, 10))
    assert not status.open_now
    assert status.next_open is None
    assert hours.describe_week(schedule(windows=[])) == ""


def test_it_keeps_an_overnight_window_open_after_midnight():
    late = schedule(windows=[(4, T(18), T(2))])  # Friday 6 PM to 2 AM Saturday
    status = hours.open_status(late, at(2026, 11, 28, 1, 0))  # Saturday 1 AM
    assert status.open_now
    assert status.closes_at == at(2026, 11, 28, 2, 0)
    assert not hours.is_open(late, at(2026, 11, 28, 2, 30))


def test_it_cancels_an_overnight_window_when_its_opening_day_is_closed():
    late = schedule(windows=[(4, T(18), T(2))], closed=[FRI])
    assert not hours.is_open(late, at(2026, 11, 28, 1, 0))


def test_it_never_closes_a_shop_open_around_the_clock():
    always = schedule(windows=[(d, T(0), T(23, 59)) for d in range(7)])
    late = at(2026, 11, 24, 23, 59).replace(second=30)
    status = hours.open_status(always, late)
    assert status.open_now
    assert status.closes_at is not None
    assert status.closes_at - late > dt.timedelta(days=1)


def test_it_uses_daylight_time_on_the_spring_forward_sunday():
    # 2026-03-08: US clocks go from 2:00 CST to 3:00 CDT. 13:30 UTC is 8:30 CDT (7:30 in CST).
    sunday = schedule(windows=[(6, T(8), T(12))])
    assert hours.is_open(sunday, dt.datetime(2026, 3, 8, 13, 30, tzinfo=dt.UTC))
    assert not hours.is_open(sunday, dt.datetime(2026, 3, 8, 12, 30, tzinfo=dt.UTC))


def test_it_resolves_a_window_starting_in_the_skipped_hour():
    night = schedule(windows=[(6, T(2, 30), T(6))])
    periods = hours.periods_on(night, dt.date(2026, 3, 8))
    # 2:30 does not exist that night; it is read with the offset in force before the switch (CST), which is
    # the same instant as 3:30 CDT, so the shop is not treated as closed that night.
    assert periods[0].start.astimezone(dt.UTC) == dt.datetime(2026, 3, 8, 8, 30, tzinfo=dt.UTC)
    assert periods[0].start.hour == 3


def test_it_compares_instants_in_utc_in_the_repeated_hour_when_clocks_go_back():
    # 2026-11-01: 1:00–2:00 happens twice. A window closing at 1:30 closes at the *first* 1:30.
    night = schedule(windows=[(5, T(20), T(1, 30))])  # Saturday 8 PM to 1:30 AM Sunday
    first_115 = at(2026, 11, 1, 1, 15, fold=0)
    second_115 = at(2026, 11, 1, 1, 15, fold=1)
    assert hours.is_open(night, first_115)
    assert not hours.is_open(night, second_115)


def test_it_reads_now_in_the_shops_timezone_not_the_servers():
    la = schedule(windows=[(0, T(8), T(17))], tz="America/Los_Angeles")
    # 16:30 UTC on Monday is 8:30 in Los Angeles (and 10:30 in Chicago).
    assert hours.is_open(la, dt.datetime(2026, 11, 23, 16, 30, tzinfo=dt.UTC))
    assert not hours.is_open(la, dt.datetime(2026, 11, 23, 15, 30, tzinfo=dt.UTC))


def test_it_refuses_naive_datetimes():
    with pytest.raises(ValueError, match="naive"):
        hours.is_open(schedule(), dt.datetime(2026, 11, 24, 10, 0))  # noqa: DTZ001 - the point of the test


def test_it_finds_the_next_open_day():
    assert hours.next_open_day(schedule(), SAT) == dt.date(2026, 11, 30)
    assert hours.next_open_day(schedule(windows=[]), SAT) is None


@pytest.mark.parametrize(
    ("value", "spoken"),
    [
        (T(17, 30), "5:30 PM"),
        (T(8), "8 AM"),
        (T(12), "noon"),
        (T(0), "midnight"),
        (T(0, 5), "12:05 AM"),
        (T(12, 45), "12:45 PM"),
    ],
)
def test_it_formats_times_as_people_say_them(value, spoken):
    assert hours.format_time(value) == spoken


def test_it_describes_the_week_grouping_days_with_the_same_hours():
    assert hours.describe_week(schedule()) == (
        "Monday through Friday 7:30 AM to 5:30 PM, and Saturday 8 AM to 1 PM. Closed Sunday."
    )
    weekdays_only = schedule(windows=[(d, T(8), T(17)) for d in range(5)])
    assert hours.describe_week(weekdays_only).endswith("Closed Saturday and Sunday.")


@pytest.mark.parametrize(
    ("day", "said"),
    [(MON, "today"), (TUE, "tomorrow"), (SAT, "Saturday"), (MON + dt.timedelta(days=8), "Tuesday, December 1")],
)
def test_it_names_days_relative_to_today(day, said):
    assert hours.relative_day(day, MON) == said


@pytest.mark.django_db
def test_it_loads_a_shops_schedule_with_upcoming_closures_only():
    shop = ShopFactory(timezone="America/Chicago")
    BusinessHoursFactory(shop=shop, weekday=0, opens_at=T(8), closes_at=T(17))
    shop.closed_dates.create(date=dt.date(2026, 1, 1), reason="New Year")
    shop.closed_dates.create(date=THU, reason="Thanksgiving")
    sched = hours.schedule_for(shop, today=MON)
    assert sched.tz == CHICAGO
    assert sched.windows == (hours.Window(0, T(8), T(17)),)
    assert sched.closed == frozenset({THU})
