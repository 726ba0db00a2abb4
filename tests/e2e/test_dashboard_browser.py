"""The owner dashboard in a real browser against a real ASGI server (Daphne, so WebSockets work).

sign up → onboarding → toggle AI → upload the sample CSV and watch the import finish → see the work
orders → a call created in another process appears live on the overview → open its detail.
Screenshots of each main page at 390 px and 1280 px wide go to test-artifacts/.

Daphne runs in a subprocess on its own database (a fresh SQLite file, or a fresh PostgreSQL database
next to DATABASE_URL's), migrated first, so the server and this test see the same rows. The live
update is made by a second process: with REDIS_URL it reaches Daphne through the Redis channel layer,
as in production; without Redis (in-memory layer, one process) that step is skipped.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.databases import own_database_url

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTHS = {"phone": (390, 844), "desktop": (1280, 900)}


# The project's copy of the shared sample export (the CSV import tests use the same file).
SAMPLE_CSV = ROOT / "shops" / "tests" / "data" / "work_orders_sample.csv"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# The server's own database
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server_env(tmp_path_factory) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}}
    env.update(
        DEBUG="1",  # WhiteNoise serves static/ straight from the finders (no collectstatic)
        SECRET_KEY="e2e-secret-key-not-for-production",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PUBLIC_BASE_URL="https://receptionist.example.com",
        # The import runs inside the upload request, as in the embedded default, even on Redis.
        CELERY_TASK_ALWAYS_EAGER="1",
        PYTHONUNBUFFERED="1",
    )
    with own_database_url("e2e", tmp_path_factory.mktemp("e2e")) as database_url:
        env["DATABASE_URL"] = database_url
        subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
        )
        yield env


@pytest.fixture(scope="module")
def live_url(server_env) -> Iterator[str]:
    """Daphne on a free port; ready when it says it is listening (read from its log, no polling)."""
    port = free_port()
    daphne = shutil.which("daphne", path=str(Path(sys.executable).parent)) or "daphne"
    proc = subprocess.Popen(  # noqa: S603
        [daphne, "-b", "127.0.0.1", "-p", str(port), "receptionist.asgi:application"],
        cwd=ROOT,
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    ready = threading.Event()
    log: list[str] = []

    def drain() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            log.append(line)
            if "Listening on TCP address" in line:
                ready.set()
        ready.set()  # exited: let the test fail with the log

    threading.Thread(target=drain, daemon=True).start()
    if not ready.wait(30) or proc.poll() is not None:
        proc.kill()
        pytest.fail("Daphne did not start:\n" + "".join(log[-40:]))
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


# Each blocked script, style, image, socket or frame fires `securitypolicyviolation` in the page;
# the listener (injected by Playwright, so the policy does not apply to it) turns it into a console error.
_REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.effectiveDirective} blocked ${e.blockedURI || "inline"} on ${e.documentURI}`
    + ` (${e.sourceFile || ""}:${e.lineNumber}) ${e.sample || ""}`);
});
"""


def watch_page(page) -> list[str]:
    """Uncaught errors and Content-Security-Policy violations of `page`, collected as they happen."""
    problems: list[str] = []
    page.add_init_script(_REPORT_CSP_VIOLATIONS)
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    def console(message) -> None:
        text = message.text
        if message.type == "error" and ("CSP violation" in text or "Content Security Policy" in text):
            problems.append(text)

    page.on("console", console)
    return problems


def shoot(browser, url: str, name: str, cookies: list) -> None:
    """Screenshots of `url` at phone and desktop width with the same login (no CSP violation on it)."""
    ARTIFACTS.mkdir(exist_ok=True)
    for width, height in WIDTHS.values():
        context = browser.new_context(viewport={"width": width, "height": height})
        context.add_cookies(cookies)
        page = context.new_page()
        problems = watch_page(page)
        page.goto(url)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
        context.close()
        assert not problems, f"{name} at {width} px: {problems}"


def run_in_server_env(server_env: dict[str, str], code: str) -> str:
    result = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=server_env,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


# ---------------------------------------------------------------------------------------------
# The walk
# ---------------------------------------------------------------------------------------------
def test_it_walks_an_owner_from_sign_up_to_a_live_call(browser, live_url, server_env):
    from playwright.sync_api import expect

    expect.set_options(timeout=10_000)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = watch_page(page)

    # Landing → sign up
    page.goto(live_url + "/")
    shoot(browser, live_url + "/", "landing", [])
    page.get_by_role("link", name="Create your shop's account").click()
    shoot(browser, page.url, "signup", [])
    page.locator("#id_email").fill("owner@example.com")
    page.locator("#id_password1").fill("a-long-pass-phrase-9")
    page.locator("#id_password2").fill("a-long-pass-phrase-9")
    page.get_by_role("button", name="Sign Up").click()

    # Onboarding: a short guided form
    expect(page.get_by_role("heading", name="Welcome! Let's set up your shop")).to_be_visible()
    cookies = context.cookies()
    shoot(browser, page.url, "onboarding", cookies)
    page.get_by_label("Shop name").fill("Ridgeview Auto Care")
    page.get_by_label("Address").fill("400 Ridge Rd, Springfield")
    page.get_by_label("Number callers dial").fill("(555) 555-0100")
    page.get_by_label("Transfer number").fill("555-555-0199")
    page.get_by_label("Greeting").fill("Thanks for calling Ridgeview Auto Care!")
    page.get_by_role("button", name="Create shop").click()

    # Overview
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    slug = page.url.rstrip("/").rsplit("/", 1)[-1]
    assert slug == "ridgeview-auto-care"
    expect(page.get_by_text("https://receptionist.example.com/telephony/twilio/voice/")).to_be_visible()

    # AI off, then on again (htmx POST swaps the status card)
    page.get_by_test_id("ai-toggle").click()
    expect(page.locator("#ai-status")).to_contain_text("calls ring through")
    page.reload()
    expect(page.get_by_test_id("ai-toggle")).to_have_text("Turn AI on")
    page.get_by_test_id("ai-toggle").click()
    expect(page.get_by_test_id("ai-toggle")).to_have_text("Turn AI off")

    # Work orders: upload the sample CSV, watch the import finish
    page.get_by_role("link", name="Work orders").click()
    page.get_by_role("link", name="Import CSV").click()
    page.get_by_label("CSV file").set_input_files(str(SAMPLE_CSV))
    page.get_by_role("button", name="Upload and import").click()
    expect(page.locator("#import-progress")).to_have_attribute("data-status", "done")
    expect(page.get_by_test_id("import-summary")).to_be_visible()
    shoot(browser, page.url, "import", cookies)
    page.get_by_role("link", name="See work orders").click()
    expect(page.get_by_test_id("work-orders").locator("tbody tr").first).to_be_visible()
    assert page.get_by_test_id("work-orders").locator("tbody tr").count() > 10
    shoot(browser, page.url, "work-orders", cookies)

    # Inline status change on the first row (htmx swaps the row)
    first_select = page.get_by_test_id("work-orders").locator("tbody tr select").first
    first_select.select_option("ready_for_pickup")
    expect(page.get_by_test_id("work-orders").locator("tbody tr").first).to_contain_text("Saved")

    # A call starts in another process and appears on the overview without a reload
    page.get_by_role("link", name="Overview").click()
    if server_env.get("REDIS_URL"):
        expect(page.locator("#live")).to_have_attribute("data-live", "connected")
        call_id = run_in_server_env(
            server_env,
            "from django.utils import timezone; from calls.models import CallLog; from calls.live import call_changed;"
            f"from shops.models import Shop; shop = Shop.objects.get(slug={slug!r});"
            "call = CallLog.objects.create(shop=shop, call_sid='CAe2e0001', caller_number='+15555550123',"
            " started_at=timezone.now(), status='in_progress', intent='CHECK_STATUS', engine='local',"
            " summary='Asked whether the Civic is ready');"
            "call_changed(shop_id=shop.pk, call_id=call.pk); print(call.pk)",
        )
        expect(page.get_by_test_id("live-calls")).to_contain_text("•••0123", timeout=3_000)
        expect(page.get_by_test_id("calls-today")).to_have_text("1")
        page.get_by_test_id("recent-calls").get_by_role("link").first.click()
        expect(page).to_have_url(f"{live_url}/shops/{slug}/calls/{call_id}/")
        expect(page.get_by_test_id("call-summary")).to_have_text("Asked whether the Civic is ready")
        shoot(browser, page.url, "call-detail", cookies)
    else:
        # The in-memory channel layer does not cross processes; the channel-layer push itself is
        # covered by calls/tests/test_dashboard_live.py. Still put a call in the database for the pages.
        run_in_server_env(
            server_env,
            "from django.utils import timezone; from calls.models import CallLog; from shops.models import Shop;"
            f"shop = Shop.objects.get(slug={slug!r});"
            "CallLog.objects.create(shop=shop, call_sid='CAe2e0001', caller_number='+15555550123',"
            " started_at=timezone.now(), outcome='resolved', intent='CHECK_STATUS', duration_seconds=74,"
            " summary='Asked whether the Civic is ready')",
        )
    shoot(browser, f"{live_url}/shops/{slug}/", "overview", cookies)

    for path, name in [
        ("calls/", "calls"),
        ("analytics/", "analytics"),
        ("settings/", "settings"),
        ("settings/hours/", "settings-hours"),
        ("try/", "try"),
    ]:
        shoot(browser, f"{live_url}/shops/{slug}/{path}", name, cookies)

    # Log out and back in
    page.goto(f"{live_url}/shops/{slug}/")
    page.locator("details.menu > summary").last.click()
    page.get_by_role("button", name="Log out").click()
    page.goto(live_url + "/accounts/login/")
    shoot(browser, page.url, "login", [])
    page.locator("#id_login").fill("owner@example.com")
    page.locator("#id_password").fill("a-long-pass-phrase-9")
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(f"{live_url}/shops/{slug}/")
    assert not errors, errors
    context.close()
