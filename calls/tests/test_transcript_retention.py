"""Transcripts are deleted TRANSCRIPT_RETENTION_DAYS after a call ends; the call record stays."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from calls.models import CallLog, CallTurn, ToolCall
from calls.retention import transcripts_delete_expired
from calls.tasks import delete_expired_transcripts
from calls.tests.factories import CallLogFactory
from receptionist.celery import app
from shops.tests.factories import MembershipFactory, ShopFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def talked_call(*, ended_days_ago: float | None, shop=None, **fields) -> CallLog:
    """A finished call with everything retention deletes: turns, tool details, summary, message, state."""
    started = NOW - dt.timedelta(days=(ended_days_ago or 0) + 0.01)
    call = CallLogFactory(
        **({"shop": shop} if shop else {}),
        **{"started_at": started, **fields},
        ended_at=None if ended_days_ago is None else NOW - dt.timedelta(days=ended_days_ago),
        duration_seconds=74,
        engine=CallLog.Engine.LOCAL,
        intent="CHECK_STATUS",
        intents=["CHECK_STATUS"],
        confidence=0.9,
        outcome=CallLog.Outcome.CALLBACK_REQUESTED,
        first_response_ms=640,
        summary="John Smith asked whether his 2018 Civic is ready.",
        callback_name="John Smith",
        callback_number="+15555550123",
        callback_reason="wants to know about the brakes",
        state={"v": 3, "verified": ["RO-1001"], "last_name": "smith"},
    )
    CallTurn.objects.create(call=call, role=CallTurn.Role.CALLER, text="is my civic ready, this is john smith")
    CallTurn.objects.create(call=call, role=CallTurn.Role.ASSISTANT, text="Your 2018 Honda Civic is ready.")
    ToolCall.objects.create(
        call=call,
        name="lookup_work_order",
        arguments={"last_name": "Smith", "vehicle": "civic"},
        result_summary="RO-1001 2018 Honda Civic ready_for_pickup",
        ok=True,
        latency_ms=12,
    )
    return call


def untouched(call: CallLog) -> bool:
    fresh = CallLog.objects.get(pk=call.pk)
    return (
        fresh.transcript_deleted_at is None
        and fresh.turns.count() == 2
        and fresh.summary == call.summary
        and fresh.callback_reason == call.callback_reason
        and fresh.state == call.state
        and fresh.tool_calls.get().arguments == {"last_name": "Smith", "vehicle": "civic"}
    )


def test_it_deletes_what_was_said_and_keeps_the_call_for_analytics():
    old = talked_call(ended_days_ago=91)

    assert transcripts_delete_expired(days=90, now=NOW) == 1

    call = CallLog.objects.get(pk=old.pk)
    assert not CallTurn.objects.filter(call=call).exists()
    assert (call.summary, call.callback_name, call.callback_number, call.callback_reason) == ("", "", "", "")
    assert call.state == {}
    assert call.transcript_deleted_at == NOW
    tool = ToolCall.objects.get(call=call)
    assert (tool.arguments, tool.result_summary) == ({}, "")
    # What analytics read is unchanged.
    assert (tool.name, tool.ok, tool.latency_ms) == ("lookup_work_order", True, 12)
    assert (call.started_at, call.ended_at, call.duration_seconds) == (old.started_at, old.ended_at, 74)
    assert (call.outcome, call.intent, call.intents, call.engine) == (
        CallLog.Outcome.CALLBACK_REQUESTED,
        "CHECK_STATUS",
        ["CHECK_STATUS"],
        CallLog.Engine.LOCAL,
    )
    assert (call.confidence, call.first_response_ms, call.caller_number) == (0.9, 640, "+15555550123")


def test_it_leaves_newer_calls_and_other_shops_fresh_calls_alone():
    shop, other_shop = ShopFactory(), ShopFactory()
    expired = talked_call(ended_days_ago=90.01, shop=shop)
    recent = talked_call(ended_days_ago=89.99, shop=shop)
    others_recent = talked_call(ended_days_ago=3, shop=other_shop)
    others_expired = talked_call(ended_days_ago=200, shop=other_shop)
    live = talked_call(ended_days_ago=None, shop=shop)  # started moments ago, still going

    assert transcripts_delete_expired(days=90, now=NOW) == 2

    assert CallLog.objects.get(pk=expired.pk).transcript_deleted_at == NOW
    assert CallLog.objects.get(pk=others_expired.pk).transcript_deleted_at == NOW
    assert untouched(recent)
    assert untouched(others_recent)
    assert untouched(live)


def test_it_counts_a_call_that_never_ended_from_when_it_started():
    stuck = talked_call(ended_days_ago=None, started_at=NOW - dt.timedelta(days=120))
    assert transcripts_delete_expired(days=90, now=NOW) == 1
    assert not CallTurn.objects.filter(call=stuck).exists()


def test_it_works_in_batches_and_is_idempotent():
    calls = [talked_call(ended_days_ago=100 + n) for n in range(7)]
    keep = talked_call(ended_days_ago=1)

    assert transcripts_delete_expired(days=90, now=NOW, batch_size=3) == 7
    assert CallLog.objects.filter(pk__in=[c.pk for c in calls], transcript_deleted_at=NOW).count() == 7
    later = NOW + dt.timedelta(days=1)
    assert transcripts_delete_expired(days=90, now=later, batch_size=3) == 0  # nothing left to clear
    assert CallLog.objects.filter(transcript_deleted_at=later).count() == 0
    assert CallTurn.objects.filter(call__in=calls).count() == 0
    assert untouched(keep)


def test_it_keeps_everything_when_retention_is_zero():
    old = talked_call(ended_days_ago=5000)
    assert transcripts_delete_expired(days=0, now=NOW) == 0
    assert untouched(old)


def test_the_daily_task_uses_the_configured_days(settings):
    settings.TRANSCRIPT_RETENTION_DAYS = 30
    old, recent = talked_call(ended_days_ago=31), talked_call(ended_days_ago=29)
    assert delete_expired_transcripts.delay().get() == 1
    assert CallLog.objects.get(pk=old.pk).transcript_deleted_at is not None
    assert untouched(recent)


def test_it_is_scheduled_daily_by_celery_beat():
    entry = settings.CELERY_BEAT_SCHEDULE["delete-expired-transcripts"]
    assert entry["task"] == delete_expired_transcripts.name
    assert entry["task"] in app.tasks
    schedule = entry["schedule"]
    assert (schedule.hour, schedule.minute, len(schedule.day_of_week), len(schedule.day_of_month)) == ({3}, {17}, 7, 31)
    assert settings.TRANSCRIPT_RETENTION_DAYS == 90  # the default


def test_the_owner_sees_that_the_transcript_was_deleted(client):
    call = talked_call(ended_days_ago=120)
    membership = MembershipFactory(shop=call.shop)
    client.force_login(membership.user)
    transcripts_delete_expired(days=90, now=NOW)

    html = client.get(reverse("calls:detail", kwargs={"slug": call.shop.slug, "pk": call.pk})).content.decode()
    assert 'data-testid="transcript-deleted"' in html
    assert "Deleted with the transcript on" in html
    for said in ["is my civic ready", "Your 2018 Honda Civic is ready.", "wants to know about the brakes"]:
        assert said not in html
    assert "lookup_work_order" in html  # the tool calls' names and timings stay
