"""Writes behind the owner dashboard: creating a shop, its hours and services, the team, work orders.

Keyword-only, typed, each in one transaction. Views call these after their forms validated the input.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from shops.models import BusinessHours, ClosedDate, Invitation, Membership, Service, Shop, WorkOrder

logger = logging.getLogger(__name__)


class _Window(Protocol):
    weekday: int
    opens_at: dt.time
    closes_at: dt.time


class _ServiceLine(Protocol):
    name: str
    price_note: str
    duration_note: str


# ---------------------------------------------------------------------------------------------
# Shops
# ---------------------------------------------------------------------------------------------
def unique_slug(name: str) -> str:
    """A slug for `name` no other shop has: 'joes-garage', then 'joes-garage-2', …"""
    base = (slugify(name) or "shop")[:50].strip("-") or "shop"
    taken = set(Shop.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def shop_create(
    *,
    owner: User,
    details: dict[str, Any],
    windows: Sequence[_Window],
    services: Sequence[_ServiceLine],
) -> Shop:
    """Create a shop with its weekly hours and services, and make `owner` its owner.

    `details` are Shop field values (name, phone_number, …). Returns the shop. A concurrent shop taking
    the same slug is retried with the next free one; the same phone number raises IntegrityError.
    """
    for _attempt in range(5):
        try:
            with transaction.atomic():
                shop = Shop.objects.create(slug=unique_slug(details["name"]), **details)
                Membership.objects.create(user=owner, shop=shop, role=Membership.Role.OWNER)
                hours_set(shop=shop, windows=windows)
                services_set(shop=shop, services=services)
                return shop
        except IntegrityError:
            if Shop.objects.filter(phone_number=details.get("phone_number")).exists():
                raise
    raise IntegrityError("Could not find a free slug for this shop name.")


def shop_update(*, shop: Shop, fields: dict[str, Any]) -> Shop:
    for name, value in fields.items():
        setattr(shop, name, value)
    shop.save(update_fields=[*fields, "updated_at"])
    return shop


def shop_set_ai_enabled(*, shop: Shop, enabled: bool) -> Shop:
    """Turn the receptionist on or off. Calls read shop.ai_enabled when they arrive, so this takes
    effect on the next call (a call in progress carries on)."""
    Shop.objects.filter(pk=shop.pk).update(ai_enabled=enabled, updated_at=timezone.now())
    shop.ai_enabled = enabled
    return shop


@transaction.atomic
def hours_set(*, shop: Shop, windows: Iterable[_Window]) -> None:
    """Replace the shop's weekly hours with `windows`."""
    BusinessHours.objects.filter(shop=shop).delete()
    BusinessHours.objects.bulk_create(
        BusinessHours(shop=shop, weekday=w.weekday, opens_at=w.opens_at, closes_at=w.closes_at) for w in windows
    )


@transaction.atomic
def services_set(*, shop: Shop, services: Iterable[_ServiceLine]) -> None:
    """Replace the shop's service list."""
    Service.objects.filter(shop=shop).delete()
    Service.objects.bulk_create(
        Service(shop=shop, name=s.name, price_note=s.price_note, duration_note=s.duration_note) for s in services
    )


@transaction.atomic
def closed_dates_set(*, shop: Shop, dates: Iterable[tuple[dt.date, str]]) -> None:
    ClosedDate.objects.filter(shop=shop).delete()
    ClosedDate.objects.bulk_create(ClosedDate(shop=shop, date=day, reason=reason) for day, reason in dates)


def current_hours(shop: Shop) -> dict[int, list[tuple[dt.time, dt.time]]]:
    result: dict[int, list[tuple[dt.time, dt.time]]] = {}
    for h in BusinessHours.objects.filter(shop=shop).order_by("weekday", "opens_at"):
        result.setdefault(h.weekday, []).append((h.opens_at, h.closes_at))
    return result


# ---------------------------------------------------------------------------------------------
# Team
# ---------------------------------------------------------------------------------------------
def _find_user_by_email(email: str) -> Any:
    from allauth.account.models import EmailAddress

    address = EmailAddress.objects.filter(email__iexact=email).select_related("user").first()
    if address is not None:
        return address.user
    return get_user_model().objects.filter(email__iexact=email).first()


def invite_staff(*, shop: Shop, email: str, invited_by: User) -> Membership | Invitation:
    """Give `email` staff access to `shop`.

    An existing user becomes a member at once (and is told by e-mail); anyone else gets a pending
    Invitation whose link leads to sign-up, accepted when they sign up or log in with that address.
    Returns the Membership or the Invitation. Inviting an existing member changes nothing.
    """
    email = email.strip()
    user = _find_user_by_email(email)
    link_base = settings.PUBLIC_BASE_URL
    if user is not None:
        membership, created = Membership.objects.get_or_create(
            user=user, shop=shop, defaults={"role": Membership.Role.STAFF}
        )
        if created:
            overview = link_base + reverse("shops:overview", kwargs={"slug": shop.slug})
            _send(
                email,
                f"You now have access to {shop.name}",
                f"{invited_by} added you to {shop.name} on Voice Receptionist.\n\n"
                f"See its calls and work orders: {overview}\n",
            )
        return membership
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .filter(shop=shop, email__iexact=email, accepted_at__isnull=True)
            .first()
        )
        if invitation is None:
            invitation = Invitation.objects.create(
                shop=shop, email=email, token=Invitation.new_token(), invited_by=invited_by
            )
    link = link_base + reverse("shops:invitation", kwargs={"token": invitation.token})
    _send(
        email,
        f"Join {shop.name} on Voice Receptionist",
        f"{invited_by} invited you to see {shop.name}'s calls and work orders on Voice Receptionist.\n\n"
        f"Create your account (or log in) with this e-mail address here:\n{link}\n",
    )
    return invitation


def _send(to: str, subject: str, body: str) -> None:
    # Mail goes out after the transaction that made the invitation commits.
    transaction.on_commit(lambda: send_mail(subject, body, None, [to], fail_silently=False))


def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    """Accept `invitation` for `user` (whose e-mail matches it). Idempotent; returns the membership."""
    with transaction.atomic():
        locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
        membership, _ = Membership.objects.get_or_create(
            user=user, shop_id=locked.shop_id, defaults={"role": locked.role}
        )
        if locked.accepted_at is None:
            locked.accepted_at = timezone.now()
            locked.accepted_by = user
            locked.save(update_fields=["accepted_at", "accepted_by"])
    return membership


def invitations_accept_for_user(*, user: User, token: str | None = None) -> list[Membership]:
    """Accept the open invitations addressed to `user`'s e-mail.

    Accepted when the user proved they own the address: it is verified, or they arrived through the
    invitation's own link (`token`, kept in their session). Someone who merely *typed* an invited
    address at sign-up gets nothing until they verify it.
    """
    from allauth.account.models import EmailAddress

    verified = {
        a.lower() for a in EmailAddress.objects.filter(user=user, verified=True).values_list("email", flat=True)
    }
    own = {a.lower() for a in EmailAddress.objects.filter(user=user).values_list("email", flat=True)}
    own.add((getattr(user, "email", "") or "").lower())
    own.discard("")
    if not own:
        return []
    addressed_to_user = Q()
    for address in own:
        addressed_to_user |= Q(email__iexact=address)
    accepted = []
    for invitation in Invitation.objects.filter(addressed_to_user, accepted_at__isnull=True):
        address = invitation.email.lower()
        if address in verified or (token and invitation.token == token and address in own):
            accepted.append(invitation_accept(invitation=invitation, user=user))
    return accepted


def member_remove(*, membership: Membership) -> None:
    """Remove a member; the last owner cannot be removed (a shop always has someone in charge)."""
    if (
        membership.role == Membership.Role.OWNER
        and not Membership.objects.filter(shop_id=membership.shop_id, role=Membership.Role.OWNER)
        .exclude(pk=membership.pk)
        .exists()
    ):
        raise ValueError("A shop needs at least one owner.")
    membership.delete()


# ---------------------------------------------------------------------------------------------
# Work orders
# ---------------------------------------------------------------------------------------------
def work_order_set_status(*, order: WorkOrder, status: str) -> WorkOrder:
    order.status = status
    order.save(update_fields=["status", "updated_at"])
    return order


# ---------------------------------------------------------------------------------------------
# Greeting preview audio
# ---------------------------------------------------------------------------------------------
class GreetingAudioUnavailable(Exception):
    """No voice engine can speak the greeting on this server (message says why, for the owner)."""


def espeak_path() -> str | None:
    return shutil.which("espeak-ng")


def greeting_audio(shop: Shop) -> bytes:
    """WAV audio of the shop's spoken greeting with the configured voice engine.

    OpenAI's text-to-speech when OpenAI is configured and the shop does not insist on the offline
    engine; otherwise (or if OpenAI fails) espeak-ng, the offline engine. Raises
    GreetingAudioUnavailable when neither can speak.
    """
    text = shop.spoken_greeting
    if settings.OPENAI_API_KEY and shop.voice_engine != Shop.VoiceEngine.LOCAL:
        try:
            return _openai_tts(text)
        except Exception:  # fall back to the offline voice, as calls do
            logger.warning("OpenAI text-to-speech failed for the greeting preview; using espeak-ng", exc_info=True)
    return _espeak_tts(text)


def _openai_tts(text: str) -> bytes:
    from openai import OpenAI

    client = OpenAI(
        api_key=settings.OPENAI_API_KEY, base_url=settings.OPENAI_BASE_URL, timeout=settings.OPENAI_TIMEOUT_SECONDS
    )
    response = client.audio.speech.create(
        model="gpt-4o-mini-tts", voice=settings.OPENAI_VOICE, input=text, response_format="wav"
    )
    return response.read()


def _espeak_tts(text: str) -> bytes:
    binary = espeak_path()
    if binary is None:
        raise GreetingAudioUnavailable(
            "The offline voice (espeak-ng) is not installed on this server, so the greeting can't be played. "
            "Install it with: apt-get install espeak-ng"
        )
    try:
        # Text on stdin, never on the command line: a greeting can't become an option.
        result = subprocess.run(  # noqa: S603 - fixed binary, no shell
            [binary, "--stdout", "--stdin", "-s", "160"],
            input=text.encode(),
            capture_output=True,
            timeout=15,
            check=True,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        raise GreetingAudioUnavailable(f"The offline voice could not speak the greeting ({exc}).") from exc
    return result.stdout
