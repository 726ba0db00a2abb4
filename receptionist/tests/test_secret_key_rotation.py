"""Rotating SECRET_KEY with SECRET_KEY_FALLBACKS (docs/runbooks/rotating-secrets.md): what was signed with
the old key keeps working while the old key is a fallback, and stops working once it is dropped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse

from shops.tests.factories import MembershipFactory
from telephony.tokens import StreamTokenInvalid, issue_stream_token, redeem_stream_token

ROOT = Path(__file__).resolve().parents[2]
OLD_KEY = "old-key-" + "o" * 50
NEW_KEY = "new-key-" + "n" * 50

PROBE = """
import sys, django
from django.core import signing
django.setup()
try:
    print(signing.loads(sys.argv[1], salt="rotation-probe"))
except signing.BadSignature:
    print("refused")
"""


def unsign_in_a_fresh_process(value: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "SECRET_KEY_FALLBACKS", "DEBUG")}
    base.update(DJANGO_SETTINGS_MODULE="receptionist.settings", ALLOWED_HOSTS="example.com", **env)
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", PROBE, value], cwd=ROOT, env=base, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_it_accepts_values_signed_with_a_key_listed_in_secret_key_fallbacks():
    signed = signing.dumps("still good", key=OLD_KEY, salt="rotation-probe")
    assert unsign_in_a_fresh_process(signed, SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=f"other-key,{OLD_KEY}") == (
        "still good"
    )
    assert unsign_in_a_fresh_process(signed, SECRET_KEY=NEW_KEY) == "refused"


@pytest.mark.django_db
def test_it_keeps_owners_logged_in_while_the_old_key_is_a_fallback(settings):
    settings.SECRET_KEY = OLD_KEY
    membership = MembershipFactory()
    active, away = Client(), Client()
    active.force_login(membership.user)
    away.force_login(membership.user)
    overview = reverse("shops:overview", kwargs={"slug": membership.shop.slug})

    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_KEY, [OLD_KEY]
    assert active.get(overview).status_code == 200  # and the session is re-signed with the new key

    settings.SECRET_KEY_FALLBACKS = []
    assert active.get(overview).status_code == 200
    response = away.get(overview)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.django_db
def test_it_opens_a_media_stream_whose_token_was_issued_just_before_the_rotation(settings):
    settings.SECRET_KEY = OLD_KEY
    membership = MembershipFactory()
    before = issue_stream_token(call_sid="CA1", shop_id=membership.shop.pk)
    dropped = issue_stream_token(call_sid="CA2", shop_id=membership.shop.pk)

    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_KEY, [OLD_KEY]
    assert redeem_stream_token(before, call_sid="CA1") == membership.shop.pk

    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(StreamTokenInvalid):
        redeem_stream_token(dropped, call_sid="CA2")
