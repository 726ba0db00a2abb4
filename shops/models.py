"""Shops, who works there, and the work orders callers ask about."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower

from shops.phones import DEFAULT_REGION, to_e164


def validate_e164(value: str) -> None:
    if value and to_e164(value) != value:
        raise ValidationError("Enter the number in international format, e.g. +15555550100.")


def validate_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"Unknown time zone {value!r}.") from exc


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Shop(models.Model):
    class VoiceEngine(models.TextChoices):
        AUTO = "auto", "Automatic (OpenAI when configured, else offline)"
        OPENAI = "openai", "OpenAI"
        LOCAL = "local", "Offline"

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    phone_number = models.CharField(
        max_length=20,
        unique=True,
        validators=[validate_e164],
        help_text="The number callers dial (E.164). Incoming calls find their shop by it.",
    )
    transfer_number = models.CharField(
        max_length=20,
        blank=True,
        validators=[validate_e164],
        help_text="The shop's main line, where callers are transferred to a person (E.164).",
    )
    country = models.CharField(
        max_length=2,
        default=DEFAULT_REGION,
        help_text="Two-letter region used to read phone numbers written without a country code.",
    )
    address = models.CharField(max_length=255, blank=True)
    directions_note = models.CharField(
        max_length=255, blank=True, help_text="One line a caller can follow, e.g. 'Behind the Shell station.'"
    )
    timezone = models.CharField(max_length=64, default="America/New_York", validators=[validate_timezone])
    greeting = models.CharField(
        max_length=300,
        blank=True,
        help_text="What the receptionist says first. Empty: 'Thanks for calling <shop name>…'",
    )
    ai_disclosure = models.BooleanField(
        default=True, help_text="Tell callers they are speaking with an automated assistant."
    )
    ai_enabled = models.BooleanField(default=True, help_text="Off: calls ring straight through to the shop.")
    voice_engine = models.CharField(max_length=10, choices=VoiceEngine.choices, default=VoiceEngine.AUTO)
    max_call_seconds = models.PositiveIntegerField(
        default=600, validators=[MinValueValidator(60), MaxValueValidator(3600)]
    )
    api_token_hash = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    api_token_hint = models.CharField(max_length=12, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def local_now(self, now: dt.datetime | None = None) -> dt.datetime:
        from django.utils import timezone

        return (now or timezone.now()).astimezone(self.tz)

    @property
    def spoken_greeting(self) -> str:
        text = self.greeting or f"Thanks for calling {self.name}. How can I help you today?"
        if self.ai_disclosure:
            text = f"{text} Just so you know, I'm an automated assistant."
        return text

    def rotate_api_token(self) -> str:
        """Issue a new API token, store only its hash, and return the token (shown once)."""
        token = f"vr_{secrets.token_urlsafe(24)}"
        self.api_token_hash = _hash_token(token)
        self.api_token_hint = token[-4:]
        self.save(update_fields=["api_token_hash", "api_token_hint", "updated_at"])
        return token

    @classmethod
    def for_api_token(cls, token: str) -> Shop | None:
        if not token:
            return None
        return cls.objects.filter(api_token_hash=_hash_token(token)).first()


class BusinessHours(models.Model):
    """One opening window on one weekday; two rows on a day make a split shift (lunch break)."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0
        TUESDAY = 1
        WEDNESDAY = 2
        THURSDAY = 3
        FRIDAY = 4
        SATURDAY = 5
        SUNDAY = 6

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    opens_at = models.TimeField()
    closes_at = models.TimeField()

    class Meta:
        ordering = ["weekday", "opens_at"]
        verbose_name_plural = "business hours"

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens_at:%H:%M}–{self.closes_at:%H:%M}"

    def clean(self) -> None:
        if self.opens_at and self.closes_at and self.closes_at <= self.opens_at:
            raise ValidationError("Closing time must be after opening time.")


class ClosedDate(models.Model):
    """A day the shop is closed although its weekly hours say open (holidays, events)."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="closed_dates")
    date = models.DateField()
    reason = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["date"]
        constraints = [models.UniqueConstraint(fields=["shop", "date"], name="one_closure_per_shop_day")]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {self.reason}".strip()


class Service(models.Model):
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="services")
    name = models.CharField(max_length=120)
    price_note = models.CharField(max_length=120, blank=True, help_text="e.g. 'from $49.95'")
    duration_note = models.CharField(max_length=120, blank=True, help_text="e.g. 'about an hour'")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["shop", "name"], name="one_service_name_per_shop")]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        STAFF = "staff", "Staff"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.STAFF)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "shop"], name="one_membership_per_user_shop")]

    def __str__(self) -> str:
        return f"{self.user} · {self.shop} ({self.role})"


class WorkOrder(models.Model):
    class Status(models.TextChoices):
        ESTIMATE = "estimate", "Estimate"
        RECEIVED = "received", "Received"
        DIAGNOSING = "diagnosing", "Diagnosing"
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        WAITING_ON_PARTS = "waiting_on_parts", "Waiting on parts"
        IN_PROGRESS = "in_progress", "In progress"
        QUALITY_CHECK = "quality_check", "Quality check"
        READY_FOR_PICKUP = "ready_for_pickup", "Ready for pickup"
        PICKED_UP = "picked_up", "Picked up"
        CANCELLED = "cancelled", "Cancelled"

    class Source(models.TextChoices):
        CSV = "csv", "CSV import"
        ADMIN = "admin", "Admin"
        DASHBOARD = "dashboard", "Dashboard"
        TEKMETRIC = "tekmetric", "Tekmetric"
        SHOPWARE = "shopware", "Shop-Ware"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="work_orders")
    number = models.CharField("RO number", max_length=40)
    customer_name = models.CharField(max_length=120, blank=True)
    # Lower-cased last word of customer_name: what the caller-verification lookup matches on.
    customer_last_name = models.CharField(max_length=60, blank=True, editable=False)
    customer_phone = models.CharField(max_length=20, blank=True, validators=[validate_e164])
    vehicle_year = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1900), MaxValueValidator(2100)]
    )
    vehicle_make = models.CharField(max_length=40, blank=True)
    vehicle_model = models.CharField(max_length=60, blank=True)
    vehicle_plate = models.CharField(max_length=15, blank=True)
    vin_last6 = models.CharField("VIN (last 6)", max_length=6, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RECEIVED)
    status_note = models.TextField(blank=True)
    services = models.TextField(blank=True, help_text="Work requested, one item per line or ';'-separated.")
    promised_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.ADMIN)
    external_id = models.CharField(max_length=80, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [models.UniqueConstraint(fields=["shop", "number"], name="one_work_order_number_per_shop")]
        indexes = [
            models.Index(fields=["shop", "customer_phone"], name="wo_shop_phone_idx"),
            models.Index(fields=["shop", "customer_last_name"], name="wo_shop_last_name_idx"),
            models.Index(fields=["shop", "status"], name="wo_shop_status_idx"),
            models.Index("shop", Lower("vehicle_model"), name="wo_shop_model_idx"),
        ]

    def __str__(self) -> str:
        return f"RO {self.number} · {self.customer_name} · {self.vehicle}"

    @property
    def vehicle(self) -> str:
        return " ".join(str(p) for p in (self.vehicle_year, self.vehicle_make, self.vehicle_model) if p)

    @staticmethod
    def last_name_of(customer_name: str) -> str:
        """'Smith, John' → 'smith'; 'John Smith Jr.' → 'smith'; used for verification lookups."""
        name = (customer_name or "").strip()
        if "," in name:
            name = name.split(",", 1)[0]
            parts = name.split()
        else:
            parts = [p for p in name.split() if p.rstrip(".").lower() not in {"jr", "sr", "ii", "iii", "iv"}]
        return parts[-1].strip(".").lower()[:60] if parts else ""

    def clean(self) -> None:
        """Normalise what staff type in the admin: phone to E.164, derived last name."""
        if self.customer_phone:
            region = self.shop.country if self.shop_id else DEFAULT_REGION
            e164 = to_e164(self.customer_phone, region)
            if e164 is None:
                raise ValidationError({"customer_phone": "Not a usable phone number."})
            self.customer_phone = e164
        self.customer_last_name = self.last_name_of(self.customer_name)


class Invitation(models.Model):
    """An owner asked someone without an account (yet) to join a shop as staff.

    The e-mailed link carries `token`; the invitation is accepted when that person signs up or logs in
    with the invited e-mail address (see shops.services.invitation_accept).
    """

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Membership.Role.choices, default=Membership.Role.STAFF)
    token = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                "shop",
                Lower("email"),
                condition=models.Q(accepted_at__isnull=True),
                name="one_open_invitation_per_shop_email",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.shop} ({self.role})"

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(32)


class WorkOrderImport(models.Model):
    """One uploaded CSV of work orders and what importing it did.

    The file's bytes live in the row (not on a local disk) so a Celery worker on another machine can
    read them. Status: `preview` (admin upload waiting for the staff member's confirmation; never
    picked up by a worker) → or `pending` (queued for a worker) → `running` → `done` (imported, or
    rejected with a reason) / `failed` (crashed; the bytes are kept so it can be retried).
    """

    class Status(models.TextChoices):
        PREVIEW = "preview", "Awaiting confirmation"
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    MAX_ERRORS = 500

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="work_order_imports")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    filename = models.CharField(max_length=255)
    content = models.BinaryField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    rows_done = models.PositiveIntegerField(default=0)
    rows_total = models.PositiveIntegerField(null=True, blank=True)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    # [{"line": 3, "column": "Phone", "reason": "..."}], the first MAX_ERRORS of them.
    errors = models.JSONField(default=list, blank=True)
    rejected = models.TextField(blank=True, help_text="Why the whole file was refused (nothing was changed).")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["shop", "-created_at"], name="woimport_shop_created_idx")]

    def __str__(self) -> str:
        return f"{self.filename} → {self.shop} ({self.get_status_display()})"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.DONE, self.Status.FAILED}
