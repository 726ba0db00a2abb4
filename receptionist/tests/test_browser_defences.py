"""Browser-side defences. XSS: the Content-Security-Policy is strict on every page, our templates need nothing
inline, and what callers and CSV files supply is escaped.

Browsers enforcing it on the real pages: tests/e2e (test_csp_browser.py, test_dashboard_browser.py,
test_voice_test_page.py fail on any violation).
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from calls.models import CallTurn
from calls.tests.factories import CallLogFactory
from shops.tests.factories import MembershipFactory, UserFactory, WorkOrderFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def policy(response) -> dict[str, list[str]]:
    directives = {}
    for part in response["Content-Security-Policy"].split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/accounts/signup/", "/healthz"])
def test_it_sends_a_strict_policy(client, path):
    directives = policy(client.get(path))
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["form-action"] == ["'self'"]
    # The dashboard's live updates and the voice test open WebSockets to this host only.
    assert directives["connect-src"][0] == "'self'"
    assert "wss://testserver" in directives["connect-src"]
    assert not [v for v in directives["connect-src"] if v in {"ws:", "wss:", "*"}]


def test_it_lets_the_admin_export_page_run_exactly_its_own_inline_snippets(client):
    """django-import-export's export page has an inline handler and style attributes; the policy
    allows those by hash (and only there). If an upgrade changes them, this fails: update the hashes
    in shops/admin.py."""
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.get("/admin/shops/workorder/export/")
    assert response.status_code == 200
    html = response.content.decode()
    handlers = re.findall(r'\son[a-z]+="([^"]*)"', html)
    styles = re.findall(r'\sstyle="([^"]*)"', html)
    assert handlers and styles
    directives = policy(response)
    assert "'unsafe-hashes'" in directives["script-src"] and "'unsafe-inline'" not in directives["script-src"]
    for handler in handlers:
        assert sha256(handler) in directives["script-src"], handler
    for style in styles:
        assert sha256(style) in directives["style-src"], style
    assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html), "inline <script>"

    elsewhere = policy(client.get("/admin/shops/workorder/"))
    assert elsewhere["script-src"] == ["'self'"]


def test_our_templates_and_scripts_have_no_inline_code():
    problems = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = path.read_text()
        for pattern, what in [
            (r"<script(?![^>]*\bsrc=)[^>]*>", "inline <script>"),
            (r"<style\b", "<style> element"),
            (r"\sstyle=", "style attribute"),
            (r"\son[a-z]+=", "inline event handler"),
            (r"\shx-on", "hx-on (evaluated code)"),
            (r"javascript:", "javascript: URL"),
        ]:
            if re.search(pattern, text):
                problems.append(f"{path.relative_to(ROOT)}: {what}")
    for path in sorted((ROOT / "static").rglob("*.js")):
        if "vendor" in path.parts:
            continue
        text = path.read_text()
        if re.search(r"\beval\(|new Function\(|\.innerHTML\s*=|setAttribute\(\s*[\"']style", text):
            problems.append(f"{path.relative_to(ROOT)}: eval, innerHTML or a style attribute")
    assert not problems, problems


def test_it_escapes_markup_a_caller_or_a_csv_file_puts_into_pages(client):
    """What callers say and imported work orders hold is shown as text, never as markup (the policy is
    the second line of defence: even an unescaped inline script would not run)."""
    membership = MembershipFactory()
    client.force_login(membership.user)
    attack = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    call = CallLogFactory(shop=membership.shop, summary=attack, callback_name=attack, outcome="callback_requested")
    CallTurn.objects.create(call=call, role=CallTurn.Role.CALLER, text=attack)
    WorkOrderFactory(shop=membership.shop, customer_name=attack, vehicle_model=attack)

    pages = [
        reverse("calls:detail", kwargs={"slug": membership.shop.slug, "pk": call.pk}),
        reverse("calls:list", kwargs={"slug": membership.shop.slug}),
        reverse("shops:work_orders", kwargs={"slug": membership.shop.slug}),
    ]
    for url in pages:
        html = client.get(url).content.decode()
        assert "<script>alert" not in html and "<img src=x" not in html, url
    assert "&lt;script&gt;alert" in client.get(pages[0]).content.decode()


def test_it_refuses_a_dashboard_change_posted_without_the_csrf_token():
    """CSRF: a page on another site cannot switch a shop's receptionist off with the owner's cookie."""
    membership = MembershipFactory(role="owner", shop__ai_enabled=True)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(membership.user)
    url = reverse("shops:ai_toggle", kwargs={"slug": membership.shop.slug})

    assert browser.post(url, {"enabled": "0"}).status_code == 403
    membership.shop.refresh_from_db()
    assert membership.shop.ai_enabled is True

    page = browser.get(reverse("shops:overview", kwargs={"slug": membership.shop.slug}))
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page.content.decode()).group(1)  # base.html's hx-headers
    assert browser.post(url, {"enabled": "0"}, headers={"X-CSRFToken": token}).status_code == 302
    membership.shop.refresh_from_db()
    assert membership.shop.ai_enabled is False
