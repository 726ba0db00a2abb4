"""Call records: one CallLog per call (phone, browser or chat), its turns and its tool calls.

Text only, never audio. A CallLog is created when the call starts and updated as it goes, so a
crash mid-call still leaves a record.
"""

from __future__ import annotations

from django.db import models

from shops.models import Shop


class CallLog(models.Model):
    class Channel(models.TextChoices):
        PHONE = "phone", "Phone"
        BROWSER = "browser", "Browser"
        CHAT = "chat", "Chat"

    class Status(models.TextChoices):
        RINGING = "ringing", "Ringing"
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"

    class Engine(models.TextChoices):
        OPENAI = "openai", "OpenAI"
        LOCAL = "local", "Offline"

    class Outcome(models.TextChoices):
        RESOLVED = "resolved", "Resolved by AI"
        TRANSFERRED = "transferred", "Transferred"
        CALLBACK_REQUESTED = "callback_requested", "Callback requested"
        CALLER_HUNG_UP = "caller_hung_up", "Caller hung up"
        FAILED = "failed", "Failed"
        ABANDONED = "abandoned", "Abandoned"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="calls")
    call_sid = models.CharField(max_length=64, unique=True)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.PHONE)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RINGING)
    caller_number = models.CharField(max_length=20, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    engine = models.CharField(max_length=10, choices=Engine.choices, blank=True)
    fallback_reason = models.CharField(
        max_length=255, blank=True, help_text="Why the call switched from OpenAI to the offline engine."
    )
    intent = models.CharField(max_length=32, blank=True, help_text="The primary intent, e.g. CHECK_STATUS.")
    intents = models.JSONField(default=list, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True)
    summary = models.TextField(blank=True)
    first_response_ms = models.PositiveIntegerField(null=True, blank=True)
    usage = models.JSONField(default=dict, blank=True, help_text="Model tokens/audio used (for cost per call).")
    callback_name = models.CharField(max_length=120, blank=True)
    callback_number = models.CharField(max_length=20, blank=True)
    callback_reason = models.TextField(blank=True)
    error = models.TextField(blank=True)
    # The conversation's working memory between turns (verification, what was asked, counters), kept
    # in the row so any server process can take the next turn. Written only by voice.conversation.
    state = models.JSONField(default=dict, blank=True, editable=False)
    # When calls.retention deleted what was said (turns, summary, message, tool details) after
    # TRANSCRIPT_RETENTION_DAYS; the row itself stays for analytics.
    transcript_deleted_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["shop", "-started_at"], name="call_shop_started_idx"),
            # /metrics (receptionist.metrics) reads recent calls across shops on every scrape: calls
            # started or ended in the last minutes, and the few still ringing or in progress.
            models.Index(fields=["started_at"], name="call_started_idx"),
            models.Index(fields=["ended_at"], name="call_ended_idx"),
            models.Index(
                fields=["status"],
                name="call_open_status_idx",
                condition=models.Q(status__in=["ringing", "in_progress"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} call {self.call_sid}"


class CallTurn(models.Model):
    """One thing said: by the caller (as recognised) or by the receptionist."""

    class Role(models.TextChoices):
        CALLER = "caller", "Caller"
        ASSISTANT = "assistant", "Receptionist"

    call = models.ForeignKey(CallLog, on_delete=models.CASCADE, related_name="turns")
    role = models.CharField(max_length=10, choices=Role.choices)
    text = models.TextField()
    intent = models.CharField(max_length=32, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:60]}"


class ToolCall(models.Model):
    call = models.ForeignKey(CallLog, on_delete=models.CASCADE, related_name="tool_calls")
    name = models.CharField(max_length=64)
    arguments = models.JSONField(default=dict, blank=True)
    result_summary = models.TextField(blank=True)
    ok = models.BooleanField(default=True)
    latency_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({'ok' if self.ok else 'failed'})"
