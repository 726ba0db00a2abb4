"""Public business facts as spoken answers: hours, location and services.

Pure functions over data the tools load (a `shops.hours.Schedule`, the shop's address, its service
list) and an injected `now`, so every answer is testable at any instant. Each returns the sentence to
say and the facts behind it, and says only what the data says.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from shops import hours
from shops.hours import Schedule
from voice.nlu.catalog import ServiceMatch, match_services
from voice.nlu.text import words_of
from voice.replies import join_sentences, join_words, lowercase_service, plural_service, with_article

DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
AROUND_THE_CLOCK = dt.timedelta(hours=24)


@dataclass
class Answer:
    speak: str
    data: dict[str, Any] = field(default_factory=dict)
    offer_transfer: bool = False


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def resolve_day(day: str, today: dt.date) -> dt.date | None:
    """'today', 'tomorrow', a weekday name (its next occurrence, today included) or an ISO date."""
    day = (day or "").strip().lower()
    if day in ("", "today", "now", "tonight"):
        return today
    if day == "tomorrow":
        return today + dt.timedelta(days=1)
    if day in DAY_NAMES:
        return today + dt.timedelta(days=(DAY_NAMES.index(day) - today.weekday()) % 7)
    try:
        return dt.date.fromisoformat(day)
    except ValueError:
        return None


def _at_phrase(when: dt.datetime, today: dt.date, tz: Any) -> str:
    local = when.astimezone(tz)
    return f"{hours.relative_day(local.date(), today)} at {hours.format_time(local)}"


def _on(day: dt.date, today: dt.date) -> str:
    said = hours.relative_day(day, today)
    return said if said in ("today", "tomorrow") else f"on {said}"


def _day_sentence(schedule: Schedule, day: dt.date, today: dt.date) -> str:
    windows = hours.hours_on(schedule, day)
    when = _on(day, today)
    if windows:
        return f"{when} we're open {hours.describe_windows(windows)}"
    reason = schedule.reason_closed(day)
    if day in schedule.closed:
        return f"we're closed {when}" + (f" for {reason}" if reason else "")
    return f"we're closed {when}"


def _now_sentence(schedule: Schedule, now: dt.datetime, today: dt.date) -> str:
    status = hours.open_status(schedule, now)
    if status.open_now and status.closes_at:
        if status.closes_at - now >= AROUND_THE_CLOCK:
            return "we're open around the clock"
        return f"we're open right now until {hours.format_time(status.closes_at.astimezone(schedule.tz))}"
    parts = []
    if status.closed_today:
        parts.append(
            "we're closed today" + (f" for {status.closed_today_reason}" if status.closed_today_reason else "")
        )
    else:
        parts.append("we're closed right now")
    if status.next_open:
        parts.append(f"we open again {_at_phrase(status.next_open, today, schedule.tz)}")
    return join_sentences(*parts)


def hours_answer(
    schedule: Schedule, now: dt.datetime, *, day: str = "", time: dt.time | None = None, question: str = ""
) -> Answer:
    """Answer an hours question.

    question: open_now (default for today), closing, opening, day (a named day), week (all hours),
    holiday (upcoming closures). `day` as for resolve_day, or 'weekend'/'weekdays'/'holiday'.
    """
    tz = schedule.tz
    local_now = now.astimezone(tz)
    today = local_now.date()
    status = hours.open_status(schedule, now)
    data: dict[str, Any] = {
        "open_now": status.open_now,
        "closes_at": _iso(status.closes_at),
        "next_open": _iso(status.next_open),
        "week": hours.describe_week(schedule),
    }
    if not schedule.has_hours:
        return Answer(
            "I'm sorry, I don't have our hours on file. I can connect you with someone at the shop.", data, True
        )

    day = (day or "").lower()
    if question == "holiday" or day == "holiday":
        closures = hours.upcoming_closures(schedule, today)
        data["closures"] = [{"date": d.isoformat(), "reason": r} for d, r in closures]
        if not closures:
            return Answer(
                join_sentences("I don't have any holiday closures coming up", f"Our regular hours are {data['week']}"),
                data,
            )
        said = [f"{hours.relative_day(d, today)}" + (f" for {r}" if r else "") for d, r in closures[:3]]
        return Answer(
            join_sentences(f"We're closed {join_words(said)}", f"Otherwise our hours are {data['week']}"), data
        )

    if day == "weekend":
        saturday = today + dt.timedelta(days=(5 - today.weekday()) % 7)
        first, second = sorted([saturday, saturday + dt.timedelta(days=1)])
        if today.weekday() == 6:  # on a Sunday, "this weekend" is today and the coming Saturday
            first, second = today, saturday
        return Answer(
            join_sentences(_day_sentence(schedule, first, today), _day_sentence(schedule, second, today)), data
        )
    if day == "weekdays":
        return Answer(join_sentences(f"Our hours are {data['week']}"), data)

    target = resolve_day(day, today) if day else today
    if target is None:
        return Answer(join_sentences(f"Our hours are {data['week']}"), data)
    data["day"] = target.isoformat()
    data["hours"] = [[hours.format_time(o), hours.format_time(c)] for o, c in hours.hours_on(schedule, target)]

    if time is not None:
        when = dt.datetime.combine(target, time).replace(tzinfo=tz)
        open_then = hours.is_open(schedule, when)
        data["open_at_time"] = open_then
        at = f"{_on(target, today)} at {hours.format_time(time)}"
        lead = f"Yes, we're open {at}" if open_then else f"No, we're not open {at}"
        return Answer(join_sentences(lead, _day_sentence(schedule, target, today)), data)

    if question == "week" or (not question and not day):
        return Answer(join_sentences(f"Our hours are {data['week']}", _now_sentence(schedule, now, today)), data)

    if target == today and question in ("open_now", "", "day"):
        return Answer(join_sentences(_now_sentence(schedule, now, today)), data)

    windows = hours.hours_on(schedule, target)
    if question == "closing":
        if target == today and status.open_now and status.closes_at:
            return Answer(join_sentences(_now_sentence(schedule, now, today)), data)
        if windows:
            close_t = windows[-1][1]
            closing = f"{_on(target, today)} we close at {hours.format_time(close_t)}"
            if target == today and local_now.time() >= close_t:
                nxt = f"we open again {_at_phrase(status.next_open, today, tz)}" if status.next_open else ""
                return Answer(join_sentences(f"We closed at {hours.format_time(close_t)} today", nxt), data)
            return Answer(join_sentences(closing), data)
        nxt = f"we open again {_at_phrase(status.next_open, today, tz)}" if status.next_open and target == today else ""
        return Answer(join_sentences(_day_sentence(schedule, target, today), nxt), data)

    if question == "opening":
        if target == today and not windows or (target == today and local_now.time() >= windows[-1][1]):
            return Answer(join_sentences(_now_sentence(schedule, now, today)), data)
        if windows:
            if target == today and status.open_now and status.closes_at:
                return Answer(
                    join_sentences(
                        f"We opened at {hours.format_time(windows[0][0])} today", _now_sentence(schedule, now, today)
                    ),
                    data,
                )
            opens, closes = hours.format_time(windows[0][0]), hours.format_time(windows[-1][1])
            return Answer(join_sentences(f"{_on(target, today)} we open at {opens} and close at {closes}"), data)
        return Answer(
            join_sentences(_day_sentence(schedule, target, today), _next_open_after(schedule, target, today)), data
        )

    return Answer(
        join_sentences(
            _day_sentence(schedule, target, today), "" if windows else _next_open_after(schedule, target, today)
        ),
        data,
    )


def _next_open_after(schedule: Schedule, day: dt.date, today: dt.date) -> str:
    nxt = hours.next_open_day(schedule, day)
    if not nxt:
        return ""
    first = hours.hours_on(schedule, nxt)[0][0]
    return f"we open again {hours.relative_day(nxt, today)} at {hours.format_time(first)}"


# ---------------------------------------------------------------------------------------------
# Location
# ---------------------------------------------------------------------------------------------
def location_answer(name: str, address: str, directions_note: str) -> Answer:
    data = {"address": address, "directions": directions_note}
    if not address:
        return Answer(
            "I'm sorry, I don't have our address on file. I can connect you with someone at the shop.", data, True
        )
    return Answer(join_sentences(f"We're at {address}", directions_note), data)


# ---------------------------------------------------------------------------------------------
# Services
# ---------------------------------------------------------------------------------------------
_PRICE_WORDS = {"much", "price", "prices", "pricing", "cost", "costs", "charge", "charges", "quote", "rate", "rates"}


def _price_sentence(m: ServiceMatch) -> str:
    said = with_article(m.name)
    if not m.price_note:
        return f"I don't have a set price for {said}; the team can give you a quote"
    note = m.price_note
    if note[:1] == "$" or note.lower().startswith(("from", "about", "around", "starting", "under")):
        verb = "are" if said == lowercase_service(m.name) else "is"
        return f"{said} {verb} {note}"
    return f"for {said}, it's {note}"


def _duration_sentence(m: ServiceMatch) -> str:
    said = with_article(m.name)
    verb = "take" if said == lowercase_service(m.name) else "takes"
    return f"{said} {verb} {m.duration_note}"


def services_answer(services: list[tuple[str, str, str]], query: str = "") -> Answer:
    """Does the shop do what the caller asked? Yes/no from its own service list, with the closest ones."""
    words = words_of(query)
    asked, matches = match_services(words, services)
    data: dict[str, Any] = {"asked": asked, "matches": [m.name for m in matches], "services": [s[0] for s in services]}
    if not services:
        return Answer(
            "I'm sorry, I don't have our service list on file. I can connect you with someone at the shop.", data, True
        )
    wants_price = bool(_PRICE_WORDS & set(words))
    wants_time = "long" in words and "how" in words
    exact = [m for m in matches if m.score >= 1.0]
    if not query.strip() or (not asked and not matches and not wants_price and not wants_time and _is_generic(words)):
        shown = [plural_service(s[0]) for s in services[:6]] + (["more"] if len(services) > 6 else [])
        return Answer(join_sentences(f"We do {join_words(shown)}", "Is there something specific you need"), data)
    if exact:
        best = exact[:2]
        parts = (
            [] if wants_price or wants_time else [f"Yes, we do {join_words([plural_service(m.name) for m in best])}"]
        )
        for m in best:
            if wants_price:
                parts.append(_price_sentence(m))
            if wants_time:
                parts.append(
                    _duration_sentence(m)
                    if m.duration_note
                    else f"I don't have a time estimate for {with_article(m.name)}"
                )
        return Answer(join_sentences(*parts), data)
    if matches:
        near = [plural_service(m.name) for m in matches[:2]]
        parts = [f"I don't see exactly that on our list, but we do {join_words(near)}"]
        if wants_price:
            parts.append(_price_sentence(matches[0]))
        return Answer(
            join_sentences(*parts, "I can connect you with the team if you'd like to ask about it"), data, True
        )
    return Answer(
        join_sentences(
            "I don't see that on our service list",
            f"We do {join_words([plural_service(s[0]) for s in services[:4]])}",
            "Would you like me to connect you with someone who can tell you more",
        ),
        data,
        True,
    )


def _is_generic(words: list[str]) -> bool:
    """'what services do you offer' asks for the list, not about one service."""
    return bool({"services", "service", "offer", "do", "fix", "kind"} & set(words))
