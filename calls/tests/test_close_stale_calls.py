"""The stale-call sweep (calls.tasks.close_stale_calls, every 5 minutes by celery beat): a call whose server
process died and whose status callback never came is closed once no live call could still be going on."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.utils import timezone

from calls.models import CallLog, CallTurn
from calls.services import STALE_CALL_ERROR, STALE_CALL_MARGIN, call_end
from calls.tasks import close_stale_calls
from calls.tests.factories import CallLogFactory
from shops.tests.factories import ShopFactory

pytestmark = pytest.mark.django_db

MAX_SECONDS = 600


def past(call: CallLog, seconds: float) -> dt.datetime:
    """`seconds` after the call's last activity (its row's update)."""
    return CallLog.objects.get(pk=call.pk).updated_at + dt.timedelta(seconds=seconds)


def sweep(at: dt.datetime, monkeypatch) -> int:
    monkeypatch.setattr(timezone, "now", lambda: at)
    return close_stale_calls()


@pytest.fixture
def shop():
    return ShopFactory(max_call_seconds=MAX_SECONDS)


def test_it_closes_a_call_left_in_progress_past_its_max_length_and_margin(
    shop, monkeypatch, django_capture_on_commit_callbacks
):
    call = CallLogFactory(shop=shop, status=CallLog.Status.IN_PROGRESS, started_at=timezone.now())
    CallTurn.objects.create(call=call, role=CallTurn.Role.CALLER, text="is my civic ready")
    last_activity = CallLog.objects.get(pk=call.pk).updated_at
    stale_at = past(call, MAX_SECONDS + STALE_CALL_MARGIN.total_seconds() + 1)
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep(stale_at, monkeypatch) == 1
    call.refresh_from_db()
    assert call.status == CallLog.Status.COMPLETED
    assert call.ended_at is not None and call.ended_at >= last_activity
    assert call.ended_at < stale_at  # when it was last heard of, not when the sweep noticed
    assert call.duration_seconds is not None
    assert call.outcome == CallLog.Outcome.FAILED
    assert call.error == STALE_CALL_ERROR
    assert call.summary  # queued on close (run in the test)


def test_it_leaves_a_call_that_could_still_be_going_on(shop, monkeypatch):
    ringing = CallLogFactory(shop=shop, status=CallLog.Status.RINGING)
    talking = CallLogFactory(shop=shop, status=CallLog.Status.IN_PROGRESS)
    assert sweep(past(talking, MAX_SECONDS + STALE_CALL_MARGIN.total_seconds() - 5), monkeypatch) == 0
    assert CallLog.objects.filter(pk__in=[ringing.pk, talking.pk], ended_at__isnull=True).count() == 2


def test_it_uses_each_shops_own_max_call_length(shop, monkeypatch):
    long_calls = ShopFactory(max_call_seconds=3600)
    short = CallLogFactory(shop=shop, status=CallLog.Status.IN_PROGRESS)
    long = CallLogFactory(shop=long_calls, status=CallLog.Status.IN_PROGRESS)
    assert sweep(past(long, 1800), monkeypatch) == 1
    assert CallLog.objects.get(pk=short.pk).ended_at is not None
    assert CallLog.objects.get(pk=long.pk).ended_at is None


def test_a_recent_turn_keeps_a_chat_open_and_an_idle_one_is_abandoned(shop, monkeypatch):
    chat = CallLogFactory(shop=shop, channel=CallLog.Channel.CHAT, status=CallLog.Status.IN_PROGRESS)
    stale_at = past(chat, MAX_SECONDS + STALE_CALL_MARGIN.total_seconds() + 60)
    last_said = stale_at - dt.timedelta(seconds=30)
    turn = CallTurn.objects.create(call=chat, role=CallTurn.Role.CALLER, text="hello?")
    CallTurn.objects.filter(pk=turn.pk).update(created_at=last_said)
    assert sweep(stale_at, monkeypatch) == 0

    idle_since_turn = last_said + dt.timedelta(seconds=MAX_SECONDS + 1) + STALE_CALL_MARGIN
    assert sweep(idle_since_turn, monkeypatch) == 1
    chat.refresh_from_db()
    assert chat.outcome == CallLog.Outcome.ABANDONED
    assert chat.ended_at == last_said


def test_it_keeps_what_the_session_or_twilio_recorded_and_runs_twice_harmlessly(shop, monkeypatch):
    ended = CallLogFactory(shop=shop, status=CallLog.Status.IN_PROGRESS)
    call_end(call=ended, outcome=CallLog.Outcome.RESOLVED)
    left = CallLogFactory(shop=shop, status=CallLog.Status.IN_PROGRESS, outcome=CallLog.Outcome.TRANSFERRED)
    stale_at = past(left, MAX_SECONDS + STALE_CALL_MARGIN.total_seconds() + 1)
    assert sweep(stale_at, monkeypatch) == 1
    assert sweep(stale_at, monkeypatch) == 0
    left.refresh_from_db()
    assert left.outcome == CallLog.Outcome.TRANSFERRED  # the session had decided: only the end was missing
    before = CallLog.objects.get(pk=ended.pk)
    assert before.outcome == CallLog.Outcome.RESOLVED and before.error == ""


def test_celery_beat_runs_the_sweep_every_5_minutes():
    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "calls.tasks.close_stale_calls")
    assert len(entry["schedule"].minute) == 12  # 12 runs an hour
