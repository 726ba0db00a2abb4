from __future__ import annotations

from typing import Any

from csp.constants import UNSAFE_HASHES
from csp.decorators import csp_update
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.decorators import method_decorator
from import_export import fields, resources
from import_export.admin import ExportMixin

from shops.importing import preview_work_order_import, run_work_order_import
from shops.models import BusinessHours, ClosedDate, Membership, Service, Shop, WorkOrder, WorkOrderImport


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


# What a spreadsheet would run as a formula (OWASP "CSV injection"). import-export's own setting only
# strips a leading "=", so exported cells starting with any of these get a "'" in front; the CSV import
# takes it off again, so an export re-imports unchanged.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


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

    def dehydrate_promised_at(self, order: WorkOrder) -> str:
        # In the shop's own time with its offset, so a re-import puts it back at the same instant.
        return order.promised_at.astimezone(order.shop.tz).isoformat(timespec="minutes") if order.promised_at else ""

    def export_field(self, field: fields.Field, instance: Any, **kwargs: Any) -> Any:
        value = super().export_field(field, instance, **kwargs)
        if isinstance(value, str) and value.startswith(FORMULA_STARTS):
            return "'" + value
        return value


class WorkOrderImportForm(forms.Form):
    MAX_BYTES = 50 * 1024 * 1024

    shop = forms.ModelChoiceField(queryset=Shop.objects.all())
    file = forms.FileField(
        label="CSV file",
        help_text="An export from your shop system or a spreadsheet saved as CSV. Work orders are matched by "
        "RO number: existing ones are updated, new ones created.",
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError("The file is over 50 MB; split it, or use `manage.py import_work_orders`.")
        return upload


@admin.register(WorkOrder)
class WorkOrderAdmin(ExportMixin, admin.ModelAdmin):
    resource_classes = [WorkOrderExportResource]
    # ExportMixin wraps this template, so the changelist has both "Import CSV" and "Export".
    change_list_template = "admin/shops/workorder/change_list.html"
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

    # django-import-export's export page carries one inline onchange handler and two style attributes.
    # The Content-Security-Policy allows exactly those three (by hash) on this staff page, nothing else.
    @method_decorator(
        csp_update(
            {
                "script-src": [UNSAFE_HASHES, "'sha256-wid4zL8fR53ZYy1ljOepzR77Dn6vWUUxuNnnWWBP3I8='"],
                "style-src": [
                    UNSAFE_HASHES,
                    "'sha256-mHgUAqxc8GPXM/QhzkHrHujcrQTU9fd6ZjWz+icxKcA='",  # padding: 0;
                    "'sha256-+YWRMZ88jMyO7jVlBA52tZADiPobPIUA8LAWee68Fvs='",  # font-weight: bold;
                ],
            }
        )
    )
    def export_action(self, request: HttpRequest) -> HttpResponse:
        return super().export_action(request)

    def get_urls(self) -> list[URLPattern]:
        return [
            path("import-csv/", self.admin_site.admin_view(self.import_csv_view), name="shops_workorder_import_csv"),
            path(
                "import-csv/<int:import_id>/confirm/",
                self.admin_site.admin_view(self.import_csv_confirm_view),
                name="shops_workorder_import_csv_confirm",
            ),
            *super().get_urls(),
        ]

    def has_import_csv_permission(self, request: HttpRequest) -> bool:
        # An import both creates and updates work orders.
        return self.has_add_permission(request) and self.has_change_permission(request)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra_context = {**(extra_context or {}), "has_import_csv_permission": self.has_import_csv_permission(request)}
        return super().changelist_view(request, extra_context)

    def import_csv_view(self, request: HttpRequest) -> HttpResponse:
        """Step 1 (GET): choose shop and file. Step 2 (POST): dry run, show what would happen."""
        if not self.has_import_csv_permission(request):
            raise PermissionDenied
        form = WorkOrderImportForm(request.POST or None, request.FILES or None)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Import work orders from CSV",
            "form": form,
        }
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            job, report = preview_work_order_import(
                shop=form.cleaned_data["shop"],
                uploaded_by=request.user,
                filename=upload.name,
                content=upload.read(),
            )
            labels = dict(WorkOrder.Status.choices)
            rows = [{**row, "status": labels.get(row["status"], row["status"])} for row in report.preview]
            context.update(title="Preview CSV import", job=job, report=report, preview_rows=rows)
            return TemplateResponse(request, "admin/shops/workorder/import_csv_preview.html", context)
        return TemplateResponse(request, "admin/shops/workorder/import_csv.html", context)

    def import_csv_confirm_view(self, request: HttpRequest, import_id: int) -> HttpResponse:
        """Step 3 (POST): import the previewed upload for real. Only its uploader can, and only once."""
        if not self.has_import_csv_permission(request):
            raise PermissionDenied
        changelist = reverse("admin:shops_workorder_changelist")
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:shops_workorder_import_csv"))
        job = get_object_or_404(WorkOrderImport, pk=import_id, uploaded_by=request.user)
        done = run_work_order_import(import_id=job.pk, claim_from=WorkOrderImport.Status.PREVIEW)
        if done is None:
            messages.warning(request, f"{job.filename} was already imported.")
        elif done.status == WorkOrderImport.Status.FAILED:
            messages.error(request, f"Importing {done.filename} failed; nothing after the error was saved.")
        elif done.rejected:
            messages.error(request, f"{done.filename} was rejected, nothing changed: {done.rejected}")
        else:
            level = messages.WARNING if done.skipped else messages.SUCCESS
            messages.add_message(
                request,
                level,
                f"Imported {done.filename} into {done.shop}: created {done.created}, updated {done.updated}, "
                f"skipped {done.skipped}.",
            )
        return HttpResponseRedirect(changelist)


@admin.register(WorkOrderImport)
class WorkOrderImportAdmin(admin.ModelAdmin):
    """A read-only history of CSV imports (the admin's and the dashboard's)."""

    list_display = ["filename", "shop", "status", "created", "updated", "skipped", "uploaded_by", "created_at"]
    list_filter = ["status", "shop"]
    list_select_related = ["shop", "uploaded_by"]
    exclude = ["content"]
    readonly_fields = [
        "shop",
        "uploaded_by",
        "filename",
        "status",
        "rows_done",
        "rows_total",
        "created",
        "updated",
        "skipped",
        "errors",
        "rejected",
        "created_at",
        "finished_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
