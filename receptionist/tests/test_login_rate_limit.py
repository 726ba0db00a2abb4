"""Brute-forcing the owner login is rate-limited (allauth, ACCOUNT_RATE_LIMITS).

Each test logs in from addresses and accounts of its own: allauth's counters live in the shared cache
(Redis with REDIS_URL) and outlive a test.
"""

from __future__ import annotations

import secrets

import pytest
from django.test import Client

from shops.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
PASSWORD = "a-long-pass-phrase-9"
TOO_MANY = "Too many failed login attempts"


def random_address() -> str:
    return "10.{}.{}.{}".format(*secrets.token_bytes(3))


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Each login attempt hashes a password; the limits are what is tested here, not PBKDF2's cost.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def owner():
    user = UserFactory(email=f"owner-{secrets.token_hex(4)}@example.com")
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    return user


def log_in(client: Client, email: str, password: str, address: str):
    return client.post(LOGIN, {"login": email, "password": password}, REMOTE_ADDR=address)


def test_it_locks_an_account_after_five_failed_logins_even_for_the_right_password(client, owner):
    attacker = random_address()
    failures = [log_in(client, owner.email, f"guess-{n}", attacker) for n in range(5)]
    assert all(r.status_code == 200 and TOO_MANY not in r.content.decode() for r in failures)

    # Sixth try, from anywhere, with the right password: refused until the window passes.
    locked = log_in(client, owner.email, PASSWORD, random_address())
    assert locked.status_code == 200
    assert TOO_MANY in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_it_still_lets_another_account_in(client, owner):
    attacker = random_address()
    for n in range(5):
        log_in(client, owner.email, f"guess-{n}", attacker)
    other = UserFactory(email=f"other-{secrets.token_hex(4)}@example.com")
    other.set_password(PASSWORD)
    other.save(update_fields=["password"])
    response = log_in(Client(), other.email, PASSWORD, random_address())
    assert response.status_code == 302


def test_it_answers_429_to_an_address_that_keeps_posting_logins(client, owner):
    flooder = random_address()
    statuses = [log_in(client, f"nobody-{n}@example.com", "x", flooder).status_code for n in range(31)]
    assert statuses[:30] == [200] * 30  # wrong passwords: the form says so
    assert statuses[30] == 429
    # Another address is served.
    assert log_in(Client(), owner.email, PASSWORD, random_address()).status_code == 302
