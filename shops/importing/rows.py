"""One CSV record → WorkOrder field values, or row errors."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable
from typing import Any

from django.db import models

from shops.importing.report import RowError
from shops.importing.values import parse_datetime_text, parse_time_text, parse_year, phone_to_e164, split_vehicle
from shops.importing.vocabulary import HEADER_KEYS, STATUS_KEYS, key
from shops.models import BusinessHours, Shop, WorkOrder

DATE_ONLY_FALLBACK_CLOSE = dt.time(17, 0)

MAX_LENGTH: dict[str, int] = {
    field.name: field.max_length
    for field in WorkOrder._meta.get_fields()
    if isinstance(field, models.CharField) and field.max_length
}


class RowParser:
    """Turns one CSV record into WorkOrder field values, or row errors."""

    def __init__(self, *, shop: Shop, header: list[str]) -> None:
        self.shop = shop
        self.tz = shop.tz
        self.header = [h.strip().lstrip("\ufeff") for h in header]
        self.max_year = shop.local_now().year + 1
        ranked: dict[str, list[tuple[int, int]]] = {}
        self.ignored: list[str] = []
        for index, name in enumerate(self.header):
            if match := HEADER_KEYS.get(key(name)):
                canon, rank = match
                ranked.setdefault(canon, []).append((rank, index))
            elif name:
                self.ignored.append(name)
        self.columns = {canon: [index for _rank, index in sorted(found)] for canon, found in ranked.items()}
        self.promised_date, self.promised_time = self._promised_columns()
        self.missing = [
            label for canon, label in (("number", "RO number"), ("status", "Status")) if canon not in self.columns
        ]

        cols = self.columns
        fields = []
        if {"customer_name", "first_name", "last_name"} & cols.keys():
            fields += ["customer_name", "customer_last_name"]
        if "customer_phone" in cols:
            fields.append("customer_phone")
        for part in ("vehicle_year", "vehicle_make", "vehicle_model"):
            if part in cols or "vehicle" in cols:
                fields.append(part)
        if "vehicle_plate" in cols:
            fields.append("vehicle_plate")
        if "vin" in cols:
            fields.append("vin_last6")
        fields.append("status")
        for name in ("services", "status_note", "external_id"):
            if name in cols:
                fields.append(name)
        if self.promised_date:
            fields.append("promised_at")
        self.fields = fields
        self._closing: dict[int, dt.time] | None = None
        # Statuses, years and promised dates repeat down a file; parse each distinct text once.
        self._status_of = functools.lru_cache(maxsize=1024)(lambda label: STATUS_KEYS.get(key(label)))
        self._year_of = functools.lru_cache(maxsize=1024)(functools.partial(parse_year, max_year=self.max_year))
        self._promised_at = functools.lru_cache(maxsize=4096)(self._read_promised)

    def _promised_columns(self) -> tuple[list[int], list[int]]:
        """Promised date+time as two columns ('Promised Date', 'Promised Time') or one."""
        indexes = self.columns.get("promised", [])
        times = [i for i in indexes if "time" in key(self.header[i])]
        dates = [i for i in indexes if i not in times]
        if times and dates:
            return dates, times
        return indexes, []

    def _get(self, cells: list[str], canon: str) -> tuple[str, str]:
        """(first non-empty value among the columns for `canon`, that column's header name)."""
        indexes = self.columns.get(canon, [])
        return self._first(cells, indexes)

    def _first(self, cells: list[str], indexes: list[int]) -> tuple[str, str]:
        for i in indexes:
            if i < len(cells):
                value = cells[i].strip()
                if value[:1] == "'" and value[1:2] in ("=", "+", "-", "@"):
                    value = value[1:]  # our own export's formula escape
                if value:
                    return value, self.header[i]
        return "", self.header[indexes[0]] if indexes else ""

    def parse(self, cells: list[str], line: int) -> tuple[str, dict[str, Any], list[RowError]]:
        errors: list[RowError] = []
        values: dict[str, Any] = {}

        def error(column: str, reason: str) -> None:
            errors.append(RowError(line, column, reason))

        if "\x00" in "".join(cells):
            index = next(i for i, cell in enumerate(cells) if "\x00" in cell)
            error(self.header[index] if index < len(self.header) else "", "contains a NUL character (binary data?)")
            return "", {}, errors

        number, column = self._get(cells, "number")
        if not number:
            error(column, "RO number is missing")
        elif len(number) > MAX_LENGTH["number"]:
            error(column, f"longer than {MAX_LENGTH['number']} characters")

        fields = self.fields
        if "customer_name" in fields:
            name, column = self._get(cells, "customer_name")
            if not name:
                first, column = self._get(cells, "first_name")
                last, last_column = self._get(cells, "last_name")
                name = " ".join(part for part in (first, last) if part)
                column = column or last_column
            name = " ".join(name.split())
            if len(name) > MAX_LENGTH["customer_name"]:
                error(column, f"longer than {MAX_LENGTH['customer_name']} characters")
            values["customer_name"] = name
            values["customer_last_name"] = WorkOrder.last_name_of(name)

        if "customer_phone" in fields:
            raw, column = self._get(cells, "customer_phone")
            phone = phone_to_e164(raw, self.shop.country) if raw else ""
            if phone is None:
                error(column, "not a usable phone number")
            values["customer_phone"] = phone or ""

        if "vehicle_year" in fields or "vehicle_make" in fields or "vehicle_model" in fields:
            self._vehicle(cells, values, error)

        for canon, name in (("vehicle_plate", "vehicle_plate"), ("external_id", "external_id")):
            if name in fields:
                value, column = self._get(cells, canon)
                if len(value) > MAX_LENGTH[name]:
                    error(column, f"longer than {MAX_LENGTH[name]} characters")
                values[name] = value
        if "vin_last6" in fields:
            vin, _column = self._get(cells, "vin")
            values["vin_last6"] = re.sub(r"[^0-9A-Za-z]", "", vin).upper()[-6:]

        label, column = self._get(cells, "status")
        status = self._status_of(label)
        if not label:
            error(column, "status is empty")
        elif status is None:
            error(column, f"unknown status {label[:40]!r}")
        values["status"] = status

        for name in ("services", "status_note"):
            if name in fields:
                values[name] = self._get(cells, name)[0]

        if "promised_at" in fields:
            values["promised_at"] = self._promised(cells, error)

        return number, values, errors

    def _vehicle(self, cells: list[str], values: dict[str, Any], error: Callable[[str, str], None]) -> None:
        year, year_column = self._get(cells, "vehicle_year")
        make, make_column = self._get(cells, "vehicle_make")
        model, model_column = self._get(cells, "vehicle_model")
        vehicle, vehicle_column = self._get(cells, "vehicle")
        if vehicle:  # separate Year/Make/Model columns win; "Vehicle" fills what they leave empty
            v_year, v_make, v_model = split_vehicle(vehicle)
            if not year and v_year:
                year, year_column = v_year, vehicle_column
            make, make_column = (make, make_column) if make else (v_make, vehicle_column)
            model, model_column = (model, model_column) if model else (v_model, vehicle_column)
        if "vehicle_year" in self.fields:
            values["vehicle_year"] = None
            if year:
                parsed = self._year_of(year)
                if parsed is None:
                    error(year_column, f"not a vehicle year between 1900 and {self.max_year}: {year[:20]!r}")
                values["vehicle_year"] = parsed
        for name, value, column in (("vehicle_make", make, make_column), ("vehicle_model", model, model_column)):
            if name not in self.fields:
                continue
            if len(value) > MAX_LENGTH[name]:
                error(column, f"longer than {MAX_LENGTH[name]} characters")
            values[name] = value

    def _promised(self, cells: list[str], error: Callable[[str, str], None]) -> dt.datetime | None:
        date_text, date_column = self._first(cells, self.promised_date)
        time_text, time_column = self._first(cells, self.promised_time)
        value, problem = self._promised_at(date_text, time_text)
        if problem:
            in_time_column, reason = problem
            error(time_column if in_time_column else date_column, reason)
        return value

    def _read_promised(self, date_text: str, time_text: str) -> tuple[dt.datetime | None, tuple[bool, str] | None]:
        """(aware datetime or None, None) or (None, (is the problem in the time column, reason))."""
        if not date_text:
            return None, ((True, "a promised time without a date") if time_text else None)
        parsed = parse_datetime_text(date_text)
        if parsed is None:
            return None, (
                False,
                f"not a date we can read: {date_text[:40]!r} (use MM/DD/YYYY, YYYY-MM-DD or Nov 4 2026)",
            )
        if isinstance(parsed, dt.datetime):
            day, clock, tzinfo = parsed.date(), parsed.timetz().replace(tzinfo=None), parsed.tzinfo
        else:
            day, clock, tzinfo = parsed, self._closing_time(parsed.weekday()), None
        if time_text:
            separate = parse_time_text(time_text)
            if separate is None:
                return None, (True, f"not a time we can read: {time_text[:20]!r}")
            clock = separate
        value = dt.datetime.combine(day, clock, tzinfo=tzinfo or self.tz)
        try:
            value.astimezone(dt.UTC)  # how it is stored: 0001-01-01 east of UTC or 9999-12-31 west has no UTC
        except OverflowError:
            return None, (False, f"not a date we can store: {date_text[:40]!r}")
        return value, None

    def _closing_time(self, weekday: int) -> dt.time:
        if self._closing is None:
            self._closing = {}
            for day, closes in BusinessHours.objects.filter(shop=self.shop).values_list("weekday", "closes_at"):
                self._closing[day] = max(closes, self._closing.get(day, closes))
        return self._closing.get(weekday, DATE_ONLY_FALLBACK_CLOSE)
