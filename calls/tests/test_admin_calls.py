"""The Django admin's call records: read-only, and callers' numbers masked as in the dashboard."""

from __future__ import annotations

import pytest
from django.urls import reverse

from calls.tests.factories import CallLogFactory
from shops.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_it_masks_caller_and_callback_numbers_in_the_admin(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    call = CallLogFactory(caller_number="+15555550123", callback_number="+15555550177", callback_name="Jane")

    listing = client.get(reverse("admin:calls_calllog_changelist")).content.decode()
    record = client.get(reverse("admin:calls_calllog_change", args=[call.pk])).content.decode()

    assert "•••0123" in listing
    assert "•••0123" in record and "•••0177" in record
    for page in (listing, record):
        assert "5555550123" not in page
        assert "5555550177" not in page
    # Staff still find a call by the full number.
    found = client.get(reverse("admin:calls_calllog_changelist"), {"q": "+15555550123"}).content.decode()
    assert reverse("admin:calls_calllog_change", args=[call.pk]) in found
