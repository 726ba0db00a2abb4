"""/voice-test in Debian's Chromium against Daphne: a spoken call with a fake microphone.

Chromium's fake capture device plays a WAV made with espeak-ng ("what are your hours", a second of
silence either side; Chromium loops it) into the page's AudioWorklet, which streams it to
/ws/voice/stream/; the offline engine greets, recognises and answers. Synthetic speech is not
recognised exactly (shared/protocols.md D), so the spoken part checks only that a caller turn is
answered; the typed fallback checks the exact hours answer. Screenshots at 390 and 1280 px go to
test-artifacts/.

Daphne, its database and the helpers are the dashboard browser test's (tests/e2e/test_dashboard_browser.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_dashboard_browser import (  # noqa: F401 - live_url and server_env are fixtures
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    WIDTHS,
    live_url,
    run_in_server_env,
    server_env,
    shoot,
    watch_page,
)

pytestmark = pytest.mark.slow

QUESTION = "what are your hours"


@pytest.fixture(scope="module", autouse=True)
def _offline_engine_and_demo_shop(server_env: dict[str, str]) -> None:  # noqa: F811
    """The offline engine whatever the developer's environment says (no network here), and the demo
    shop with its owner login; set before Daphne starts."""
    server_env["VOICE_ENGINE"] = "local"
    server_env.pop("OPENAI_API_KEY", None)
    run_in_server_env(server_env, "from shops.demo import seed_demo; seed_demo(); print('ok')")


@pytest.fixture(scope="module")
def caller_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from voice.audio import AudioFormat, write_wav
    from voice.testing.speech import caller_audio

    rate = 48000
    pcm = caller_audio(QUESTION, fmt=AudioFormat("pcm16", rate), lead_ms=1000, trail_ms=1000)
    path = tmp_path_factory.mktemp("voice") / "what-are-your-hours.wav"
    write_wav(path, pcm, rate)
    return path


@pytest.fixture(scope="module")
def microphone_browser(caller_wav: Path) -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",  # grant the microphone without a prompt
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={caller_wav}",
        "--autoplay-policy=no-user-gesture-required",
    ]
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        yield browser
        browser.close()


def test_it_answers_a_spoken_and_a_typed_question(
    microphone_browser: Any,
    live_url: str,  # noqa: F811
    server_env: dict[str, str],  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=15_000)
    greeting, week = run_in_server_env(
        server_env,
        "from shops.demo import DEMO_SLUG; from shops.models import Shop;"
        "from shops.hours import describe_week, schedule_for; shop = Shop.objects.get(slug=DEMO_SLUG);"
        "print(shop.spoken_greeting + '|' + describe_week(schedule_for(shop)))",
    ).split("|")

    context = microphone_browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["microphone"])
    page = context.new_page()
    errors = watch_page(page)

    page.goto(live_url + "/accounts/login/?next=/voice-test")
    page.locator("#id_login").fill("demo@example.com")
    page.locator("#id_password").fill("demo12345")
    page.locator("form button[type=submit]").click()
    expect(page.get_by_role("heading", name="Talk to your receptionist")).to_be_visible()
    assert page.url.endswith("/voice-test/")
    shoot(microphone_browser, page.url, "voice-test-idle", context.cookies())

    transcript = page.get_by_test_id("transcript")
    page.get_by_test_id("call-toggle").click()
    expect(page.get_by_test_id("connection")).to_have_text("Connected")
    expect(page.get_by_test_id("engine")).to_have_text("Offline (local)")
    expect(page.get_by_test_id("mic-status")).to_have_text("On")
    expect(transcript.locator(".bubble.assistant").first).to_have_text(f"Receptionist: {greeting}")

    # The fake microphone asks; recognition and the domain model's first build take a while.
    spoken = transcript.locator(".bubble.caller:not(.typed)")
    expect(spoken.first).to_be_visible(timeout=60_000)
    expect(transcript.locator(".bubble.caller:not(.typed) ~ .bubble.assistant").first).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("metric-response_ms")).to_have_text(re.compile(r"^\d+ ms$"), timeout=30_000)

    # Typed fallback, with the microphone muted so the looping question doesn't talk over it.
    page.get_by_role("button", name="Mute microphone").click()
    expect(page.get_by_test_id("mic-status")).to_have_text("Muted")
    page.get_by_label("Type what the caller says").fill("What are your hours?")
    page.get_by_role("button", name="Send").click()
    typed = transcript.locator(".bubble.caller.typed")
    expect(typed).to_have_count(1)
    answers = transcript.locator(".bubble.caller.typed ~ .bubble.assistant")
    expect(answers.filter(has_text=f"Our hours are {week}")).to_have_count(1)
    expect(page.get_by_test_id("session-state")).to_have_text("Listening", timeout=30_000)

    ARTIFACTS.mkdir(exist_ok=True)
    for width, height in WIDTHS.values():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(ARTIFACTS / f"voice-test-call-{width}.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width, f"sideways scroll at {width} px"

    # Hanging up ends the call on the server (CallLog closed as caller_hung_up).
    page.get_by_test_id("call-toggle").click()
    expect(page.get_by_test_id("connection")).to_have_text("Call ended")
    expect(page.get_by_test_id("call-toggle")).to_have_text("Start call")
    assert errors == []
    context.close()
