from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from calls.models import CallLog, CallTurn, ToolCall
from shops.phones import mask


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class CallTurnInline(ReadOnlyInline):
    model = CallTurn
    fields = readonly_fields = ("role", "text", "intent", "latency_ms", "created_at")


class ToolCallInline(ReadOnlyInline):
    model = ToolCall
    fields = readonly_fields = ("name", "arguments", "result_summary", "ok", "latency_ms", "created_at")


@admin.register(CallLog)
class CallLogAdmin(admin.ModelAdmin):
    """Call records are evidence of what the receptionist said: staff read them, nobody edits them."""

    list_display = ["started_at", "shop", "channel", "masked_caller", "intent", "outcome", "duration_seconds", "engine"]
    list_filter = ["shop", "channel", "outcome", "intent", "engine", "status"]
    search_fields = ["call_sid", "caller_number", "summary"]
    date_hierarchy = "started_at"
    list_select_related = ["shop"]
    inlines = [CallTurnInline, ToolCallInline]
    # Numbers show as their last four digits here as everywhere else (search still finds a full number);
    # the conversation's working memory is internal.
    exclude = ["caller_number", "callback_number", "state"]
    readonly_fields = ["masked_caller", "masked_callback_number"]

    @admin.display(description="Caller")
    def masked_caller(self, obj: CallLog) -> str:
        return mask(obj.caller_number)

    @admin.display(description="Callback number")
    def masked_callback_number(self, obj: CallLog) -> str:
        return mask(obj.callback_number) if obj.callback_number else "—"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
