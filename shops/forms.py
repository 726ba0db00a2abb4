"""Dashboard forms: onboarding, shop settings, team invites and work orders.

Forms validate and normalise what people type (phone numbers to E.164, hours that make sense); the
writes happen in shops.services.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError

from shops.models import Shop, WorkOrder
from shops.phones import DEFAULT_REGION, to_e164

COMMON_TIMEZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Toronto",
    "America/Vancouver",
    "Europe/London",
]


def timezone_choices() -> list[tuple[str, Any]]:
    others = sorted(zoneinfo.available_timezones() - set(COMMON_TIMEZONES))
    return [
        ("Common", [(tz, tz.replace("_", " ")) for tz in COMMON_TIMEZONES]),
        ("All time zones", [(tz, tz.replace("_", " ")) for tz in others if "/" in tz and not tz.startswith("Etc/")]),
    ]


class PhoneNumberField(forms.CharField):
    """Accepts what people write — '(555) 555-0100', '555.555.0100', '+1 555 555 0100' — and cleans
    it to E.164."""

    def __init__(self, *args: Any, region: str = DEFAULT_REGION, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault("widget", forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"}))
        self.region = region
        super().__init__(*args, **kwargs)

    def clean(self, value: Any) -> str:
        text = super().clean(value)
        if not text:
            return ""
        e164 = to_e164(text, self.region)
        if e164 is None:
            raise ValidationError("Enter a phone number, e.g. (555) 555-0100 or +15555550100.", code="invalid")
        return e164


class ShopDetailsForm(forms.ModelForm):
    """Who the shop is and how callers reach it (onboarding step 1–2 and the settings page)."""

    phone_number = PhoneNumberField(
        label="Number callers dial",
        help_text="The phone number connected to the receptionist (your Twilio number), e.g. (555) 555-0100.",
    )
    transfer_number = PhoneNumberField(
        label="Transfer number",
        required=False,
        help_text="Your shop's main line: where the receptionist hands a caller to a person.",
    )
    timezone = forms.ChoiceField(choices=timezone_choices, initial="America/New_York")

    class Meta:
        model = Shop
        fields = ["name", "phone_number", "transfer_number", "address", "directions_note", "timezone", "greeting"]
        labels = {"name": "Shop name", "directions_note": "Directions (optional)"}
        widgets = {
            "greeting": forms.Textarea(attrs={"rows": 2, "maxlength": 300}),
            "address": forms.TextInput(attrs={"autocomplete": "street-address"}),
        }
        help_texts = {
            "greeting": "What the receptionist says first. Leave empty for “Thanks for calling <shop name>…”.",
        }

    def clean_phone_number(self) -> str:
        number = self.cleaned_data["phone_number"]
        if Shop.objects.filter(phone_number=number).exclude(pk=self.instance.pk).exists():
            raise ValidationError("This number is already connected to another shop.")
        return number


class ShopAIForm(forms.ModelForm):
    """How the receptionist behaves on calls (settings page)."""

    class Meta:
        model = Shop
        fields = ["ai_enabled", "voice_engine", "max_call_seconds", "ai_disclosure"]
        labels = {
            "ai_enabled": "AI answers calls",
            "voice_engine": "Voice engine",
            "max_call_seconds": "Maximum call length (seconds)",
            "ai_disclosure": "Tell callers they are talking to an automated assistant",
        }
        help_texts = {"max_call_seconds": "Between 60 and 3600. At the limit the receptionist says goodbye politely."}


# ---------------------------------------------------------------------------------------------
# Weekly hours
# ---------------------------------------------------------------------------------------------
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
DEFAULT_HOURS: dict[int, list[tuple[dt.time, dt.time]]] = {
    **{d: [(dt.time(8, 0), dt.time(17, 30))] for d in range(5)},
    5: [(dt.time(8, 0), dt.time(13, 0))],
}


@dataclass(frozen=True)
class Window:
    weekday: int
    opens_at: dt.time
    closes_at: dt.time


def _time_field(label: str) -> forms.TimeField:
    return forms.TimeField(
        label=label,
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )


class WeeklyHoursForm(forms.Form):
    """Per weekday: closed, or open from–to, with an optional second window (a lunch break)."""

    def __init__(self, *args: Any, current: dict[int, list[tuple[dt.time, dt.time]]] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        current = DEFAULT_HOURS if current is None else current
        for day, name in enumerate(WEEKDAYS):
            windows = current.get(day, [])
            self.fields[f"d{day}_closed"] = forms.BooleanField(
                label=f"{name}: closed", required=False, initial=not windows
            )
            self.fields[f"d{day}_opens"] = _time_field(f"{name} opens")
            self.fields[f"d{day}_closes"] = _time_field(f"{name} closes")
            self.fields[f"d{day}_opens2"] = _time_field(f"{name} reopens")
            self.fields[f"d{day}_closes2"] = _time_field(f"{name} closes again")
            if windows:
                self.initial.setdefault(f"d{day}_opens", windows[0][0])
                self.initial.setdefault(f"d{day}_closes", windows[0][1])
            if len(windows) > 1:
                self.initial.setdefault(f"d{day}_opens2", windows[1][0])
                self.initial.setdefault(f"d{day}_closes2", windows[1][1])

    def days(self) -> list[dict[str, Any]]:
        """Rows for the template: one per weekday with its bound fields."""
        return [
            {
                "name": name,
                "closed": self[f"d{day}_closed"],
                "opens": self[f"d{day}_opens"],
                "closes": self[f"d{day}_closes"],
                "opens2": self[f"d{day}_opens2"],
                "closes2": self[f"d{day}_closes2"],
                "has_second": bool(self[f"d{day}_opens2"].value() or self[f"d{day}_closes2"].value()),
                "errors": [
                    e for suffix in ("opens", "closes", "opens2", "closes2") for e in self[f"d{day}_{suffix}"].errors
                ],
            }
            for day, name in enumerate(WEEKDAYS)
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        windows: list[Window] = []
        for day, name in enumerate(WEEKDAYS):
            if data.get(f"d{day}_closed"):
                continue
            opens, closes = data.get(f"d{day}_opens"), data.get(f"d{day}_closes")
            opens2, closes2 = data.get(f"d{day}_opens2"), data.get(f"d{day}_closes2")
            if not opens and not closes and not opens2 and not closes2:
                self.add_error(f"d{day}_opens", f"Enter {name}'s hours, or tick “closed”.")
                continue
            if not opens or not closes:
                self.add_error(f"d{day}_opens", f"Enter both the opening and closing time for {name}.")
                continue
            if closes <= opens:
                self.add_error(f"d{day}_closes", f"{name} must close after it opens.")
                continue
            windows.append(Window(day, opens, closes))
            if opens2 or closes2:
                if not opens2 or not closes2:
                    self.add_error(f"d{day}_opens2", f"Enter both times of {name}'s second opening, or neither.")
                elif closes2 <= opens2:
                    self.add_error(f"d{day}_closes2", f"{name} must close after it reopens.")
                elif opens2 < closes:
                    self.add_error(f"d{day}_opens2", f"{name} reopens before its first closing time.")
                else:
                    windows.append(Window(day, opens2, closes2))
        data["windows"] = windows
        return data


# ---------------------------------------------------------------------------------------------
# Services and closed dates: one per line, quick to type on a phone
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServiceLine:
    name: str
    price_note: str = ""
    duration_note: str = ""


class ServicesForm(forms.Form):
    services = forms.CharField(
        label="Services",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "placeholder": "Oil change | from $49.95 | about 30 minutes"}),
        help_text="One per line: name | price (optional) | how long (optional).",
    )

    @staticmethod
    def as_text(services: list[Any]) -> str:
        lines = []
        for s in services:
            parts = [s.name, s.price_note, s.duration_note]
            while parts and not parts[-1]:
                parts.pop()
            lines.append(" | ".join(parts))
        return "\n".join(lines)

    def clean_services(self) -> list[ServiceLine]:
        result: list[ServiceLine] = []
        seen: set[str] = set()
        for number, raw in enumerate(self.cleaned_data["services"].splitlines(), start=1):
            if not raw.strip():
                continue
            parts = [p.strip() for p in raw.split("|")]
            if len(parts) > 3:
                raise ValidationError(f"Line {number}: use at most two “|” (name | price | duration).")
            name, price, duration = (parts + ["", ""])[:3]
            if not name:
                raise ValidationError(f"Line {number}: the service needs a name.")
            if max(len(name), len(price), len(duration)) > 120:
                raise ValidationError(f"Line {number}: keep each part under 120 characters.")
            if name.lower() in seen:
                raise ValidationError(f"Line {number}: “{name}” is listed twice.")
            seen.add(name.lower())
            result.append(ServiceLine(name, price, duration))
        return result


class ClosedDatesForm(forms.Form):
    closed_dates = forms.CharField(
        label="Closed dates",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "2026-12-25 Christmas"}),
        help_text="Holidays and other days you are closed, one per line: YYYY-MM-DD and an optional reason.",
    )

    def clean_closed_dates(self) -> list[tuple[dt.date, str]]:
        result: dict[dt.date, str] = {}
        for number, raw in enumerate(self.cleaned_data["closed_dates"].splitlines(), start=1):
            if not raw.strip():
                continue
            head, _, reason = raw.strip().partition(" ")
            try:
                day = dt.date.fromisoformat(head)
            except ValueError:
                raise ValidationError(f"Line {number}: write the date as YYYY-MM-DD, e.g. 2026-12-25.") from None
            result[day] = reason.strip()[:120]
        return sorted(result.items())


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail address", widget=forms.EmailInput(attrs={"autocomplete": "off"}))


# ---------------------------------------------------------------------------------------------
# Work orders
# ---------------------------------------------------------------------------------------------
class WorkOrderForm(forms.ModelForm):
    """Create/edit a work order. Model validation (WorkOrder.clean) runs too: it derives the last name
    callers are verified with."""

    customer_phone = PhoneNumberField(label="Customer phone", required=False)
    promised_at = forms.DateTimeField(
        label="Promised for",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    class Meta:
        model = WorkOrder
        fields = [
            "number",
            "customer_name",
            "customer_phone",
            "vehicle_year",
            "vehicle_make",
            "vehicle_model",
            "vehicle_plate",
            "vin_last6",
            "status",
            "status_note",
            "services",
            "promised_at",
        ]
        widgets = {
            "status_note": forms.Textarea(attrs={"rows": 2}),
            "services": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args: Any, shop: Shop, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shop = shop
        self.instance.shop = shop
        cast(PhoneNumberField, self.fields["customer_phone"]).region = shop.country or DEFAULT_REGION

    def clean_number(self) -> str:
        number = self.cleaned_data["number"].strip()
        if WorkOrder.objects.filter(shop=self.shop, number=number).exclude(pk=self.instance.pk).exists():
            raise ValidationError("Another work order already has this RO number.")
        return number


class WorkOrderStatusForm(forms.Form):
    status = forms.ChoiceField(choices=WorkOrder.Status.choices)


class WorkOrderFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=100)
    status = forms.ChoiceField(label="Status", required=False, choices=[("", "Any status"), *WorkOrder.Status.choices])


MAX_IMPORT_BYTES = 5 * 1024 * 1024


class WorkOrderImportForm(forms.Form):
    file = forms.FileField(label="CSV file", widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}))

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_IMPORT_BYTES:
            raise ValidationError("That file is larger than 5 MB; split it into smaller files.")
        if not upload.name.lower().endswith((".csv", ".txt")):
            raise ValidationError("Upload a .csv file (export it from your shop software or a spreadsheet).")
        return upload
