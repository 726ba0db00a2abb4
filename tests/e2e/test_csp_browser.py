"""The Content-Security-Policy in Chromium: the admin and account pages work under it, nothing blocked.

The owner's dashboard and the voice test are walked (with the same violation check) by
test_dashboard_browser.py and test_voice_test_page.py; this walks the pages only staff and account
holders see: the Django admin (with django-import-export's export page) and allauth's account pages.
Daphne, its database and the helpers are the dashboard browser test's.
"""

from __future__ import annotations

import pytest

from tests.e2e.test_dashboard_browser import (  # noqa: F401 - browser, live_url and server_env are fixtures
    browser,
    live_url,
    run_in_server_env,
    server_env,
    watch_page,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _demo_shop_with_a_call(server_env: dict[str, str]) -> None:  # noqa: F811
    run_in_server_env(
        server_env,
        "from django.utils import timezone; from shops.demo import seed_demo; seed_demo();"
        "from calls.models import CallLog; from shops.models import Shop;"
        "shop = Shop.objects.get(slug='demo-auto-repair');"
        "CallLog.objects.get_or_create(call_sid='CAcsp0001', defaults=dict(shop=shop, caller_number='+15555550123',"
        " started_at=timezone.now(), outcome='resolved', intent='CHECK_STATUS', duration_seconds=40));"
        "print('ok')",
    )


def test_it_serves_admin_and_account_pages_without_a_csp_violation(browser, live_url):  # noqa: F811
    from playwright.sync_api import expect

    expect.set_options(timeout=10_000)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = watch_page(page)

    response = page.goto(live_url + "/accounts/login/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    page.locator("#id_login").fill("demo@example.com")
    page.locator("#id_password").fill("demo12345")
    page.locator("form button[type=submit]").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    visited = []
    for path in [
        "/admin/",
        "/admin/shops/shop/",
        "/admin/shops/workorder/",
        "/admin/shops/workorder/import-csv/",
        "/admin/shops/workorder/export/",
        "/admin/calls/calllog/",
        "/accounts/password/change/",
        "/accounts/email/",
    ]:
        response = page.goto(live_url + path)
        assert response is not None and response.status == 200, path
        page.wait_for_load_state("networkidle")
        visited.append(path)

    # The admin's own scripts run: the change list's filters and the export page's "select all" toggle.
    page.goto(live_url + "/admin/shops/workorder/export/")
    page.locator("input.select-toggle").uncheck()
    expect(page.locator(".selectable-field-export-row input[type=checkbox]:checked")).to_have_count(0)
    page.goto(live_url + "/admin/calls/calllog/")
    page.locator("#result_list tbody a").first.click()
    expect(page.locator("h1")).to_contain_text("View call log")

    context.clear_cookies()
    for path in ["/accounts/signup/", "/accounts/password/reset/"]:
        assert page.goto(live_url + path).status == 200
        page.wait_for_load_state("networkidle")
    assert not problems, problems
    context.close()
