"""The owner dashboard's shop pages: front door, onboarding, overview, settings, team, work orders.

Every view: permission helper (shops.selectors) → form → service (shops.services) → render. Pages live
under /shops/<slug>/ so the shop a request is about is explicit and checked on every request. With
htmx a view renders only the fragment (a partial of the same template) it was asked for.
"""

from __future__ import annotations

import csv
import io
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.middleware import HtmxDetails

from shops import selectors, services
from shops.forms import (
    ClosedDatesForm,
    InviteForm,
    ServicesForm,
    ShopAIForm,
    ShopDetailsForm,
    WeeklyHoursForm,
    WorkOrderFilterForm,
    WorkOrderForm,
    WorkOrderImportForm,
    WorkOrderStatusForm,
)
from shops.models import ClosedDate, Invitation, Membership, Shop, WorkOrder


class DashboardRequest(HttpRequest):
    """What dashboard views receive: a logged-in user (login_required) and django-htmx's details."""

    user: User
    htmx: HtmxDetails


INVITE_SESSION_KEY = "invitation_token"
CURRENT_SHOP_SESSION_KEY = "current_shop"


# ---------------------------------------------------------------------------------------------
# Shared page context
# ---------------------------------------------------------------------------------------------
def render_shop_page(
    request: DashboardRequest, template: str, membership: Membership, active: str, context: dict[str, Any] | None = None
) -> HttpResponse:
    """Render a page of the shop layout: the shop, the user's role, the shop switcher and the nav."""
    shop = membership.shop
    page = {
        "shop": shop,
        "membership": membership,
        "is_owner": membership.role == Membership.Role.OWNER,
        "memberships": selectors.memberships_for_user(request.user) if not request.htmx else [],
        "active": active,
        **(context or {}),
    }
    request.session[CURRENT_SHOP_SESSION_KEY] = shop.slug
    return render(request, template, page)


# ---------------------------------------------------------------------------------------------
# Front door, onboarding, invitations
# ---------------------------------------------------------------------------------------------
def home(request: HttpRequest) -> HttpResponse:
    """Anonymous: the landing page. Member: their (last used) shop. Nobody's member yet: onboarding."""
    if not request.user.is_authenticated:
        return render(request, "shops/landing.html")
    user = cast(User, request.user)
    token = request.session.pop(INVITE_SESSION_KEY, None)
    joined = services.invitations_accept_for_user(user=user, token=token)
    for membership in joined:
        messages.success(request, f"You joined {membership.shop.name}.")
    if token and not joined and Invitation.objects.filter(token=token, accepted_at__isnull=True).exists():
        messages.error(request, "That invitation was sent to a different e-mail address than the one you use here.")
    memberships = list(selectors.memberships_for_user(user))
    if not memberships:
        return redirect("shops:onboarding")
    if joined:
        return redirect("shops:overview", slug=joined[-1].shop.slug)
    last = request.session.get(CURRENT_SHOP_SESSION_KEY)
    chosen = next((m for m in memberships if m.shop.slug == last), memberships[0])
    return redirect("shops:overview", slug=chosen.shop.slug)


@login_required
def onboarding(request: DashboardRequest) -> HttpResponse:
    """Create a shop in one short guided form; the creator becomes its owner."""
    details = ShopDetailsForm(request.POST or None, prefix="shop")
    hours = WeeklyHoursForm(request.POST or None, prefix="hours")
    service_form = ServicesForm(
        request.POST or None,
        prefix="services",
        initial={
            "services": "Oil change | from $49.95 | about 30 minutes\nBrake service\nCheck engine light diagnosis"
        },
    )
    if request.method == "POST" and all([details.is_valid(), hours.is_valid(), service_form.is_valid()]):
        try:
            shop = services.shop_create(
                owner=request.user,
                details=details.cleaned_data,
                windows=hours.cleaned_data["windows"],
                services=service_form.cleaned_data["services"],
            )
        except IntegrityError:
            details.add_error("phone_number", "This number is already connected to another shop.")
        else:
            messages.success(request, f"{shop.name} is set up. Connect your phone line below to start taking calls.")
            return redirect("shops:overview", slug=shop.slug)
    first_shop = not selectors.memberships_for_user(request.user).exists()
    return render(
        request,
        "shops/onboarding.html",
        {"details": details, "hours": hours, "services": service_form, "first_shop": first_shop},
    )


def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """The e-mailed invitation link: remember it, then sign up / log in (or, if logged in, join now)."""
    invite = Invitation.objects.filter(token=token).select_related("shop").first()
    if invite is None:
        raise Http404("No such invitation.")
    if invite.accepted_at is not None:
        messages.info(request, "This invitation has already been used. Log in to see the shop.")
        return redirect("shops:home")
    request.session[INVITE_SESSION_KEY] = token
    if request.user.is_authenticated:
        return redirect("shops:home")
    return render(request, "shops/invitation.html", {"invitation": invite})


# ---------------------------------------------------------------------------------------------
# Overview
# ---------------------------------------------------------------------------------------------
def _overview_context(shop: Shop) -> dict[str, Any]:
    from calls.selectors import activity_for_shop

    return {"activity": activity_for_shop(shop)}


@login_required
def overview(request: DashboardRequest, slug: str) -> HttpResponse:
    membership = selectors.get_membership_for_user(request.user, slug)
    shop = membership.shop
    context = _overview_context(shop)
    if request.htmx:
        return render(request, "shops/overview.html#activity", {"shop": shop, **context})
    from django.conf import settings

    context.update(
        open_status=selectors.is_open_now(shop),
        public_base_url=settings.PUBLIC_BASE_URL,
        espeak_missing=services.espeak_path() is None,
        hours=services.current_hours(shop),
    )
    return render_shop_page(request, "shops/overview.html", membership, "overview", context)


@login_required
@require_POST
def ai_toggle(request: DashboardRequest, slug: str) -> HttpResponse:
    """Turn the receptionist on/off; the next call reads the new value."""
    membership = selectors.get_membership_for_user(request.user, slug, owner=True)
    enabled = request.POST.get("enabled") == "1"
    shop = services.shop_set_ai_enabled(shop=membership.shop, enabled=enabled)
    if request.htmx:
        return render(request, "shops/overview.html#ai-status", {"shop": shop, "is_owner": True})
    messages.success(request, "The AI receptionist is now " + ("on." if enabled else "off: calls ring through."))
    return redirect("shops:overview", slug=shop.slug)


@login_required
@require_GET
def greeting_player(request: DashboardRequest, slug: str) -> HttpResponse:
    """The fragment behind "Play": an <audio> element for the WAV, or why it can't play."""
    membership = selectors.get_membership_for_user(request.user, slug)
    unavailable = None
    if services.espeak_path() is None and not _openai_configured(membership.shop):
        unavailable = (
            "The offline voice (espeak-ng) is not installed on this server, so the greeting can't be played. "
            "Install it with: apt-get install espeak-ng"
        )
    if not request.htmx:
        if unavailable:
            messages.error(request, unavailable)
            return redirect("shops:overview", slug=slug)
        return redirect("shops:greeting_audio", slug=slug)
    return render(request, "shops/partials/greeting_player.html", {"shop": membership.shop, "unavailable": unavailable})


def _openai_configured(shop: Shop) -> bool:
    from django.conf import settings

    return bool(settings.OPENAI_API_KEY) and shop.voice_engine != Shop.VoiceEngine.LOCAL


@login_required
@require_GET
def greeting_audio(request: DashboardRequest, slug: str) -> HttpResponse:
    membership = selectors.get_membership_for_user(request.user, slug)
    try:
        audio = services.greeting_audio(membership.shop)
    except services.GreetingAudioUnavailable as exc:
        return HttpResponse(str(exc), status=503, content_type="text/plain; charset=utf-8")
    response = HttpResponse(audio, content_type="audio/wav")
    response["Cache-Control"] = "private, no-store"
    return response


# ---------------------------------------------------------------------------------------------
# Settings (owners only: staff get 403)
# ---------------------------------------------------------------------------------------------
@login_required
def settings_details(request: DashboardRequest, slug: str) -> HttpResponse:
    membership = selectors.get_membership_for_user(request.user, slug, owner=True)
    shop = membership.shop
    form = ShopDetailsForm(request.POST or None, instance=shop)
    if request.method == "POST" and form.is_valid():
        services.shop_update(shop=shop, fields=form.cleaned_data)
        messages.success(request, "Shop details saved.")
        return redirect("shops:settings", slug=shop.slug)
    return render_shop_page(
        request, "shops/settings/details.html", membership, "settings", {"form": form, "tab": "details"}
    )


@login_required
def settings_ai(request: DashboardRequest, slug: str) -> HttpResponse:
    membership = selectors.get_membership_for_user(request.user, slug, owner=True)
    shop = membership.shop
    form = ShopAIForm(request.POST or None, instance=shop)
    if request.method == "POST" and form.is_valid():
        services.shop_update(shop=shop, fields=form.cleaned_data)
        messages.success(request, "Receptionist settings saved. They apply from the next call.")
        return redirect("shops:settings_ai", slug=shop.slug)
    return render_shop_page(
        request,
        "shops/settings/ai.html",
        membership,
        "settings",
        {"form": form, "tab": "ai", "token": request.session.pop("shown_api_token", None)},
    )


@login_required
@require_POST
def settings_api_token(request: DashboardRequest, slug: str) -> HttpResponse:
    """Issue a new API token; it is shown once, on the next page (never stored in clear)."""
    membership = selectors.get_membership_for_user(request.user, slug, owner=True)
    token = membership.shop.rotate_api_token()
    request.session["shown_api_token"] = token
    messages.success(request, "New API token issued. The old one no longer works.")
    return redirect("shops:settings_ai", slug=slug)


@login_required
def settings_hours(request: DashboardRequest, slug: str) -> HttpResponse:
    membership = selectors.get_membership_for_user(request.user, slug, owner=True)
    shop = membership.shop
    hours = WeeklyHoursForm(request.POST or None, prefix="hours", current=services.current_hours(shop))
    closed_initial = "\n".join(
        f"{c.date:%Y-%m-%d} {c.reason}".strip() for c in ClosedDate.objects.filter(shop=shop).order_by("date")
    )
    closed = ClosedDatesForm(request.POST or None, prefix="closed", initial={"closed_dates": closed_initial})
    if request.method == "POST" and hours.is_valid() and closed.is_valid():
        services.hours_set(shop=shop, windows=hours.cleaned_data["windows"])
        services.closed_dates_set(shop=shop, dates=closed.cleaned_data["closed_dates"])
        messages.success(request, "Hours saved.")
        return redirect("shops:settings_hours", slug=shop.slug)
    return render_shop_page(
        request, "shops/settings/hours.html", membership, "settings", {"hours": hours, "closed": closed, "tab": "hours"}
    )


@login_required
def settings_services(request: DashboardRequest, slug: str) -> HttpResponse:
    membership = selectors.get_membership_for_user(request.user, slug, owner=True)
    shop = membership.shop
    form = ServicesForm(request.POST or None, initial={"services": ServicesForm.as_text(list(shop.services.all()))})
    if request.method == "POST" and form.is_valid():
        services.services_set(shop=shop, services=form.cleaned_data["services"])
        messages.success(request, "Services saved.")
        return redirect("shops:settings_services", slug=shop.slug)
    return render_shop_page(
        request, "shops/settings/services.html", membership, "settings", {"form": form, "tab": "services"}
    )


@login_required
def settings_team(request: DashboardRequest, slug: str) -> HttpResponse:
    membership = selectors.get_membership_for_user(request.user, slug, owner=True)
    shop = membership.shop
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        result = services.invite_staff(shop=shop, email=form.cleaned_data["email"], invited_by=request.user)
        if isinstance(result, Membership):
            messages.success(request, f"{result.user} can now see {shop.name}'s calls and work orders.")
        else:
            messages.success(request, f"Invitation e-mailed to {result.email}.")
        return redirect("shops:settings_team", slug=shop.slug)
    members = Membership.objects.filter(shop=shop).select_related("user").order_by("role", "user__email")
    invitations = Invitation.objects.filter(shop=shop, accepted_at__isnull=True)
    return render_shop_page(
        request,
        "shops/settings/team.html",
        membership,
        "settings",
        {"form": form, "members": members, "invitations": invitations, "tab": "team"},
    )


@login_required
@require_POST
def team_member_remove(request: DashboardRequest, slug: str, pk: int) -> HttpResponse:
    member = selectors.get_member_for_owner(request.user, slug, pk)
    try:
        services.member_remove(membership=member)
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{member.user} no longer has access.")
    return redirect("shops:settings_team", slug=slug)


@login_required
@require_POST
def invitation_cancel(request: DashboardRequest, slug: str, pk: int) -> HttpResponse:
    invite = selectors.get_invitation_for_owner(request.user, slug, pk)
    if invite.accepted_at is None:
        invite.delete()
        messages.success(request, f"Invitation for {invite.email} cancelled.")
    return redirect("shops:settings_team", slug=slug)


# ---------------------------------------------------------------------------------------------
# Work orders (owners and staff)
# ---------------------------------------------------------------------------------------------
@login_required
def work_orders(request: DashboardRequest, slug: str) -> HttpResponse:
    membership = selectors.get_membership_for_user(request.user, slug)
    shop = membership.shop
    filters = WorkOrderFilterForm(request.GET or None)
    q = status = ""
    if filters.is_valid():
        q, status = filters.cleaned_data["q"], filters.cleaned_data["status"]
    page = Paginator(selectors.work_orders_for_shop(shop, q=q, status=status), 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "filters": filters,
        "page": page,
        "query": query.urlencode(),
        "statuses": WorkOrder.Status.choices,
        "shop": shop,
    }
    if request.htmx and request.htmx.target == "work-order-results":
        return render(request, "shops/work_orders/list.html#results", context)
    return render_shop_page(request, "shops/work_orders/list.html", membership, "work_orders", context)


@login_required
def work_order_create(request: DashboardRequest, slug: str) -> HttpResponse:
    membership = selectors.get_membership_for_user(request.user, slug)
    form = WorkOrderForm(request.POST or None, shop=membership.shop)
    if request.method == "POST" and form.is_valid():
        order = form.save(commit=False)
        order.source = WorkOrder.Source.DASHBOARD
        order.save()
        messages.success(request, f"Work order {order.number} created.")
        return redirect("shops:work_orders", slug=slug)
    return render_shop_page(request, "shops/work_orders/form.html", membership, "work_orders", {"form": form})


@login_required
def work_order_edit(request: DashboardRequest, slug: str, pk: int) -> HttpResponse:
    order = selectors.get_work_order_for_user(request.user, slug, pk)
    membership = selectors.get_membership_for_user(request.user, slug)
    form = WorkOrderForm(request.POST or None, instance=order, shop=membership.shop)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Work order {order.number} saved.")
        return redirect("shops:work_orders", slug=slug)
    return render_shop_page(
        request, "shops/work_orders/form.html", membership, "work_orders", {"form": form, "order": order}
    )


@login_required
@require_POST
def work_order_status(request: DashboardRequest, slug: str, pk: int) -> HttpResponse:
    """Inline status change from the list (htmx swaps the row; without JS, back to the list)."""
    order = selectors.get_work_order_for_user(request.user, slug, pk)
    form = WorkOrderStatusForm(request.POST)
    if form.is_valid():
        services.work_order_set_status(order=order, status=form.cleaned_data["status"])
    if request.htmx:
        return render(
            request,
            "shops/work_orders/list.html#row",
            {"order": order, "shop": order.shop, "statuses": WorkOrder.Status.choices, "saved": form.is_valid()},
        )
    messages.success(request, f"Work order {order.number}: {order.get_status_display()}.")
    return redirect(request.POST.get("next") or reverse("shops:work_orders", kwargs={"slug": slug}))


# CSV import: upload → Celery task (shops.tasks.import_work_orders_task) → progress page.
def _importing() -> Any:
    """The import service, or None while it is not installed (another part of the project)."""
    try:
        from shops import importing
    except ImportError:
        return None
    return importing


@login_required
def work_order_import(request: DashboardRequest, slug: str) -> HttpResponse:
    membership = selectors.get_membership_for_user(request.user, slug)
    form = WorkOrderImportForm(request.POST or None, request.FILES or None)
    importing = _importing()
    if request.method == "POST" and form.is_valid() and importing is not None:
        upload = form.cleaned_data["file"]
        job = importing.start_work_order_import(
            shop=membership.shop, uploaded_by=request.user, filename=upload.name, content=upload.read()
        )
        return redirect("shops:work_order_import_detail", slug=slug, pk=job.pk)
    recent = selectors.work_order_imports_for_shop(membership.shop)[:5] if importing is not None else []
    return render_shop_page(
        request,
        "shops/work_orders/import.html",
        membership,
        "work_orders",
        {"form": form, "recent": recent, "unavailable": importing is None},
    )


@login_required
def work_order_import_detail(request: DashboardRequest, slug: str, pk: int) -> HttpResponse:
    job = selectors.get_work_order_import_for_user(request.user, slug, pk)
    context = {"job": job, "shop": job.shop}
    if request.htmx:
        return render(request, "shops/work_orders/import_detail.html#progress", context)
    membership = selectors.get_membership_for_user(request.user, slug)
    return render_shop_page(request, "shops/work_orders/import_detail.html", membership, "work_orders", context)


@login_required
@require_GET
def work_order_import_errors(request: DashboardRequest, slug: str, pk: int) -> HttpResponse:
    """The per-row error report as CSV (line, column, reason)."""
    job = selectors.get_work_order_import_for_user(request.user, slug, pk)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["line", "column", "reason"])
    for error in job.errors or []:
        writer.writerow([_safe_cell(error.get(k, "")) for k in ("line", "column", "reason")])
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
    return response


def _safe_cell(value: Any) -> str:
    from calls.views import escape_formula

    return escape_formula(str(value))


# ---------------------------------------------------------------------------------------------
# Try it
# ---------------------------------------------------------------------------------------------
@login_required
def try_it(request: DashboardRequest, slug: str) -> HttpResponse:
    membership = selectors.get_membership_for_user(request.user, slug)
    try:
        resolve("/voice-test")
        voice_test_url: str | None = "/voice-test"
    except Resolver404:
        voice_test_url = None
    try:
        resolve("/api/voice/chat")
        chat_available = True
    except Resolver404:
        chat_available = False
    return render_shop_page(
        request,
        "shops/try.html",
        membership,
        "try",
        {"voice_test_url": voice_test_url, "chat_available": chat_available},
    )
