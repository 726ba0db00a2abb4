from __future__ import annotations

import factory
from django.utils import timezone

from calls.models import CallLog
from shops.tests.factories import ShopFactory


class CallLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CallLog

    shop = factory.SubFactory(ShopFactory)
    call_sid = factory.Sequence(lambda n: f"CA{n:032x}")
    channel = CallLog.Channel.PHONE
    caller_number = "+15555550123"
    started_at = factory.LazyFunction(timezone.now)
