"""Reads for the owner dashboard: which shops a user may see, and their objects scoped to those shops.

Every owner-facing view starts with one of the `get_<thing>_for_user()` helpers below. They return
404 for an object of a shop the user is not a member of (never 403: that would confirm it exists) and
403 only when a *member* lacks the role (staff opening settings).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from shops.models import BusinessHours, ClosedDate, Invitation, Membership, Shop, WorkOrder, WorkOrderImport

AnyUser = User | AnonymousUser


def _user_id(user: AnyUser) -> int:
    """The logged-in user's id; anonymous users are nobody's members (404)."""
    if not user.is_authenticated or user.pk is None:
        raise Http404("No such shop.")
    return int(user.pk)


def memberships_for_user(user: AnyUser) -> QuerySet[Membership]:
    if not user.is_authenticated:
        return Membership.objects.none()
    return Membership.objects.filter(user_id=user.pk).select_related("shop").order_by("shop__name")


def get_membership_for_user(user: AnyUser, slug: str, *, owner: bool = False) -> Membership:
    """The user's membership of the shop `slug`.

    Raises Http404 when the user is not a member (or the shop does not exist), PermissionDenied when
    `owner` is asked for and the member is staff.
    """
    if not user.is_authenticated:
        raise Http404("No such shop.")
    membership = Membership.objects.filter(user_id=user.pk, shop__slug=slug).select_related("shop").first()
    if membership is None:
        raise Http404("No such shop.")
    if owner and membership.role != Membership.Role.OWNER:
        raise PermissionDenied("Only the shop's owners can change its settings.")
    return membership


def get_work_order_for_user(user: AnyUser, slug: str, pk: int) -> WorkOrder:
    order = WorkOrder.objects.filter(pk=pk, shop__slug=slug, shop__memberships__user_id=_user_id(user)).first()
    if order is None:
        raise Http404("No such work order.")
    return order


def get_invitation_for_owner(user: AnyUser, slug: str, pk: int) -> Invitation:
    get_membership_for_user(user, slug, owner=True)
    invitation = Invitation.objects.filter(pk=pk, shop__slug=slug).first()
    if invitation is None:
        raise Http404("No such invitation.")
    return invitation


def get_member_for_owner(user: AnyUser, slug: str, pk: int) -> Membership:
    get_membership_for_user(user, slug, owner=True)
    member = Membership.objects.filter(pk=pk, shop__slug=slug).select_related("user").first()
    if member is None:
        raise Http404("No such team member.")
    return member


def get_work_order_import_for_user(user: AnyUser, slug: str, pk: int) -> Any:
    from shops.models import WorkOrderImport  # type: ignore[attr-defined,unused-ignore]

    job = WorkOrderImport.objects.filter(pk=pk, shop__slug=slug, shop__memberships__user_id=_user_id(user)).first()
    if job is None:
        raise Http404("No such import.")
    return job


def work_order_imports_for_shop(shop: Shop) -> QuerySet[WorkOrderImport]:
    """The shop's imports, newest first; admin uploads still awaiting confirmation are not imports yet."""
    return (
        WorkOrderImport.objects.filter(shop=shop)
        .exclude(status=WorkOrderImport.Status.PREVIEW)
        .defer("content")
        .order_by("-created_at")
    )


def work_orders_for_shop(shop: Shop, *, q: str = "", status: str = "") -> QuerySet[WorkOrder]:
    qs = WorkOrder.objects.filter(shop=shop)
    if status:
        qs = qs.filter(status=status)
    for word in q.split()[:5]:
        digits = "".join(ch for ch in word if ch.isdigit())
        condition = (
            Q(number__icontains=word)
            | Q(customer_name__icontains=word)
            | Q(vehicle_make__icontains=word)
            | Q(vehicle_model__icontains=word)
            | Q(vehicle_plate__icontains=word)
        )
        if len(digits) >= 4:
            condition |= Q(customer_phone__endswith=digits[-4:])
        qs = qs.filter(condition)
    return qs.order_by("-updated_at", "-id")


# ---------------------------------------------------------------------------------------------
# Open now? shops/hours.py is the project's implementation (split shifts, overnight windows, DST);
# until it is importable the overview uses the small fallback below.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OpenStatus:
    is_open: bool
    closes_at: dt.datetime | None = None
    next_open: dt.datetime | None = None
    reason: str = ""


def is_open_now(shop: Shop, now: dt.datetime | None = None) -> OpenStatus:
    """Whether the shop is open at `now` (aware; default: the current time) in its own time zone."""
    now = now or timezone.now()
    try:
        from shops import hours  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return _is_open_now_fallback(shop, now)
    status = hours.open_status(hours.schedule_for(shop), now)
    reason = ("Closed today: " + status.closed_today_reason) if status.closed_today_reason else ""
    if status.closed_today and not reason:
        reason = "Closed today"
    return OpenStatus(status.open_now, status.closes_at, status.next_open, reason)


def _is_open_now_fallback(shop: Shop, now: dt.datetime) -> OpenStatus:
    local = shop.local_now(now)
    closure = ClosedDate.objects.filter(shop=shop, date=local.date()).first()
    if closure is not None:
        return OpenStatus(is_open=False, reason=f"Closed today: {closure.reason}" if closure.reason else "Closed today")
    t = local.time().replace(tzinfo=None)
    for window in BusinessHours.objects.filter(shop=shop, weekday=local.weekday()):
        if window.opens_at <= t < window.closes_at:
            return OpenStatus(is_open=True, closes_at=dt.datetime.combine(local.date(), window.closes_at, shop.tz))
    return OpenStatus(is_open=False)
