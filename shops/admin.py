from __future__ import annotations

from django.contrib import admin
from import_export import fields, resources
from import_export.admin import ExportMixin

from shops.models import BusinessHours, ClosedDate, Membership, Service, Shop, WorkOrder


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class BusinessHoursInline(admin.TabularInline):
    model = BusinessHours
    extra = 0


class ClosedDateInline(admin.TabularInline):
    model = ClosedDate
    extra = 0


class ServiceInline(admin.TabularInline):
    model = Service
    extra = 0


@admin.register(Shop)
class ShopAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "phone_number", "transfer_number", "timezone", "ai_enabled"]
    list_filter = ["ai_enabled", "voice_engine"]
    search_fields = ["name", "slug", "phone_number"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["api_token_hint", "created_at", "updated_at"]
    inlines = [MembershipInline, BusinessHoursInline, ClosedDateInline, ServiceInline]


class WorkOrderExportResource(resources.ModelResource):
    """Export columns that read well in a spreadsheet and re-import through the CSV service."""

    shop = fields.Field(attribute="shop__slug", column_name="Shop")

    class Meta:
        model = WorkOrder
        fields = (
            "shop",
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
            "source",
            "external_id",
            "updated_at",
        )
        export_order = fields


@admin.register(WorkOrder)
class WorkOrderAdmin(ExportMixin, admin.ModelAdmin):
    resource_classes = [WorkOrderExportResource]
    list_display = ["number", "shop", "customer_name", "customer_phone", "vehicle", "status", "promised_at", "source"]
    list_filter = ["status", "source", "shop"]
    search_fields = [
        "number",
        "customer_name",
        "customer_phone",
        "vehicle_make",
        "vehicle_model",
        "vehicle_plate",
        "vin_last6",
    ]
    list_select_related = ["shop"]
    readonly_fields = ["customer_last_name", "created_at", "updated_at"]
    date_hierarchy = "updated_at"
