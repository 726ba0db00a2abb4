"""Filters for the call list, its CSV export and the analytics range (all GET, kept in the URL)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from calls.models import CallLog
from calls.selectors import INTENTS, CallFilters

_DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class CallFilterForm(forms.Form):
    q = forms.CharField(
        label="Search",
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Last 4 digits or words in the summary"}),
    )
    date_from = forms.DateField(label="From", required=False, widget=_DATE)
    date_to = forms.DateField(label="To", required=False, widget=_DATE)
    intent = forms.ChoiceField(
        label="Intent",
        required=False,
        choices=[("", "Any intent"), *[(i, i.replace("_", " ").title()) for i in INTENTS]],
    )
    outcome = forms.ChoiceField(
        label="Outcome", required=False, choices=[("", "Any outcome"), *CallLog.Outcome.choices]
    )
    channel = forms.ChoiceField(
        label="Channel", required=False, choices=[("", "Any channel"), *CallLog.Channel.choices]
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("date_from") and data.get("date_to") and data["date_to"] < data["date_from"]:
            raise ValidationError("The end date is before the start date.")
        return data

    def filters(self) -> CallFilters:
        """The valid filters (an invalid form filters nothing rather than failing the page)."""
        if not self.is_valid():
            return CallFilters()
        d = self.cleaned_data
        return CallFilters(
            date_from=d.get("date_from"),
            date_to=d.get("date_to"),
            intent=d.get("intent") or "",
            outcome=d.get("outcome") or "",
            channel=d.get("channel") or "",
            q=(d.get("q") or "").strip(),
        )


RANGES = [("7", "Last 7 days"), ("30", "Last 30 days"), ("90", "Last 90 days"), ("custom", "Custom")]


class AnalyticsRangeForm(forms.Form):
    range = forms.ChoiceField(label="Range", required=False, choices=RANGES, initial="30")
    start = forms.DateField(label="From", required=False, widget=_DATE)
    end = forms.DateField(label="To", required=False, widget=_DATE)

    MAX_DAYS = 366

    def dates(self, today: dt.date) -> tuple[dt.date, dt.date]:
        """(start, end) inclusive local dates; defaults to the last 30 days."""
        if not self.is_valid():
            return today - dt.timedelta(days=29), today
        d = self.cleaned_data
        if d.get("start") and d.get("end") and (d.get("range") in ("", "custom", None)):
            start, end = sorted([d["start"], d["end"]])
            return max(start, end - dt.timedelta(days=self.MAX_DAYS - 1)), end
        days = int(d.get("range") or 30) if (d.get("range") or "30").isdigit() else 30
        return today - dt.timedelta(days=days - 1), today
