"""Reading single cells: vehicles, years, phones, dates and times."""

from __future__ import annotations

import datetime as dt
import re

from shops.importing.vocabulary import MULTI_WORD_MAKES
from shops.phones import to_e164


def split_vehicle(text: str) -> tuple[str, str, str]:
    """'2018 Honda Civic' → ('2018', 'Honda', 'Civic'); 'Land Rover Range Rover Sport' → ('', 'Land
    Rover', 'Range Rover Sport'); "'18 Mercedes-Benz C300" → ('18', 'Mercedes-Benz', 'C300')."""
    tokens = text.replace(",", " ").split()
    year = ""
    if tokens and re.fullmatch(r"\d{4}|'?\d{2}", tokens[0]):
        year = tokens.pop(0).lstrip("'")
    if len(tokens) >= 2 and (tokens[0].lower(), tokens[1].lower()) in MULTI_WORD_MAKES:
        return year, " ".join(tokens[:2]), " ".join(tokens[2:])
    return year, (tokens[0] if tokens else ""), " ".join(tokens[1:])


_US_TEN_DIGITS = re.compile(r"\(?([2-9]\d\d)\)?[ .-]?(\d{3})[ .-]?(\d{4})")


def phone_to_e164(raw: str, region: str) -> str | None:
    """`shops.phones.to_e164`, with a shortcut for the shape most US exports use, `(355) 604-0791`:
    phonenumbers' parser is half of the time spent on a row, and for a US ten-digit number whose area
    code starts 2-9 it can only answer `+1` and those digits. Everything else goes to `to_e164`."""
    if region == "US" and (match := _US_TEN_DIGITS.fullmatch(raw)):
        return "+1" + "".join(match.groups())
    return to_e164(raw, region)


def parse_year(text: str, *, max_year: int) -> int | None:
    text = text.strip().removesuffix(".0")
    if re.fullmatch(r"\d{4}", text):
        year = int(text)
    elif re.fullmatch(r"\d{2}", text):  # '18 → 2018, '98 → 1998
        year = 2000 + int(text)
        if year > max_year:
            year -= 100
    else:
        return None
    return year if 1900 <= year <= max_year else None


_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_WEEKDAY_PREFIX = re.compile(r"(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)[a-z]*\.?,?\s+", re.I)
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_US_DATE = re.compile(r"(\d{1,2})[/-](\d{1,2})[/-](\d{4}|\d{2})(?!\d)")
_NAMED_DATE = re.compile(r"([a-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})", re.I)
_DAY_NAMED_DATE = re.compile(r"(\d{1,2})\s+([a-z]{3,9})\.?,?\s+(\d{4})", re.I)
_TIME = re.compile(r"(\d{1,2})(?::(\d{2}))?(?::(\d{2})(?:\.\d+)?)?\s*(?:([ap])\.?\s*m?\.?)?", re.I)


def parse_datetime_text(text: str) -> dt.datetime | dt.date | None:
    """A date (no time given) or a datetime (naive, or aware when an offset is given); None if unreadable.

    US month-first (`11/04/2026 10:00 AM`, `11/4/26 14:30`), ISO (`2026-11-04`, `2026-11-04T10:00-05:00`)
    and written-out dates (`Nov 4 2026`, `4 November 2026`, `Wed, Nov 4, 2026 3pm`).
    """
    text = _WEEKDAY_PREFIX.sub("", text.strip(), count=1)
    if _ISO_DATE.match(text):
        try:
            parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed if re.search(r"\d[T ]\d", text) else parsed.date()
    for pattern, order in ((_ISO_DATE, "ymd"), (_US_DATE, "mdy"), (_NAMED_DATE, "bdy"), (_DAY_NAMED_DATE, "dby")):
        match = pattern.match(text)
        if not match:
            continue
        parts = dict(zip(order, match.groups(), strict=True))
        month = _MONTHS.get(parts["b"].lower()) if "b" in parts else int(parts["m"])
        if month is None:
            return None
        year = int(parts["y"]) + (2000 if len(parts["y"]) == 2 else 0)
        try:
            date = dt.date(year, month, int(parts["d"]))
        except ValueError:
            return None
        rest = text[match.end() :].strip().lstrip("T,@").strip()
        rest = re.sub(r"^at\s+", "", rest, flags=re.I)
        if not rest:
            return date
        clock = parse_time_text(rest)
        return dt.datetime.combine(date, clock) if clock else None
    return None


def parse_time_text(text: str) -> dt.time | None:
    """'10:00 AM', '10am', '2:30 p.m.', '14:30', '14:30:00' → time; a bare '10' is ambiguous → None."""
    match = _TIME.fullmatch(text.strip())
    if not match:
        return None
    hour, minute, second, meridiem = match.groups()
    h, m, s = int(hour), int(minute or 0), int(second or 0)
    if meridiem:
        if not 1 <= h <= 12:
            return None
        h = h % 12 + (12 if meridiem.lower() == "p" else 0)
    elif minute is None:
        return None
    try:
        return dt.time(h, m, s)
    except ValueError:
        return None
