from __future__ import annotations

import datetime as dt

import factory
from django.contrib.auth import get_user_model

from shops.models import BusinessHours, Membership, Service, Shop, WorkOrder


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}@example.com")
    email = factory.LazyAttribute(lambda u: u.username)
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-123")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # noqa: N805 - factory_boy hook signature
        if create:
            obj.save()


class ShopFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Shop

    name = factory.Sequence(lambda n: f"Shop {n} Auto Repair")
    slug = factory.Sequence(lambda n: f"shop-{n}")
    phone_number = factory.Sequence(lambda n: f"+1555700{n:04d}")
    transfer_number = "+15557009999"
    address = "12 Elm Street, Springfield, IL 62701"
    timezone = "America/Chicago"


class BusinessHoursFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BusinessHours

    shop = factory.SubFactory(ShopFactory)
    weekday = 0
    opens_at = dt.time(8, 0)
    closes_at = dt.time(17, 30)


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service

    shop = factory.SubFactory(ShopFactory)
    name = factory.Sequence(lambda n: f"Service {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    shop = factory.SubFactory(ShopFactory)
    role = Membership.Role.OWNER


class WorkOrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WorkOrder

    shop = factory.SubFactory(ShopFactory)
    number = factory.Sequence(lambda n: str(20000 + n))
    customer_name = "John Smith"
    customer_last_name = factory.LazyAttribute(lambda wo: WorkOrder.last_name_of(wo.customer_name))
    customer_phone = factory.Sequence(lambda n: f"+1555800{n:04d}")
    vehicle_year = 2018
    vehicle_make = "Honda"
    vehicle_model = "Civic"
    status = WorkOrder.Status.IN_PROGRESS
    services = "Oil change"
