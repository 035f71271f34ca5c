"""The real app in a real browser: chat with the embedded model, lookup, claim check, audit.

Starts ``python app.py --port <free port>`` as a subprocess on the shared test data dir
(where the joined model file and the index are cached) and drives it with Playwright
through Debian's chromium. Screenshots go to test-artifacts/ (gitignored).
"""

from __future__ import annotations

from collections.abc import Iterator

import helpers
import pytest

# The model answers on a shared 2-core CPU: allow more than the default per-test limit.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1800)]

ARTIFACTS = helpers.REPO / "test-artifacts"
# First question: may include building the index and loading the model on a busy 2-core box.
ANSWER_TIMEOUT_MS = 1_200_000
QUICK_TIMEOUT_MS = 30_000

KNEE = "What do I bill for an ultrasound-guided knee injection?"
NOTE_WITHOUT_PATENCY = (
    "Procedure: right internal jugular central venous catheter placement.\n"
    "Potential access sites were evaluated with ultrasound.\n"
    "Under real-time ultrasound guidance the needle entry into the vein was visualized.\n"
    "An image was saved to PACS. Performed by Dr. Smith."
)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app, started as a subprocess on a free port."""
    log = tmp_path_factory.mktemp("app") / "app.log"
    try:
        # The server log is kept next to the screenshots for a failing run.
        with helpers.run_app(
            helpers.shared_data_dir(), log, keep_log_as=ARTIFACTS / "app-browser.log",
            backend="embedded", llm_timeout_s=900,
        ) as app:
            yield app.url
    except helpers.ProcessFailed as exc:
        pytest.fail(str(exc))


@pytest.fixture
def page(browser, app_url):  # type: ignore[no-untyped-def]
    """A fresh page on the app."""
    ARTIFACTS.mkdir(exist_ok=True)
    pg = browser.new_page(viewport={"width": 1280, "height": 1400})
    pg.goto(app_url)
    pg.wait_for_selector("#question textarea", timeout=QUICK_TIMEOUT_MS)
    yield pg
    pg.close()


def _tab(page, name: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("tab", name=name).click()


def test_lookup_works_at_once(page) -> None:  # type: ignore[no-untyped-def]
    _tab(page, "Lookup")
    page.locator("#lookup-codes textarea").fill("76937 20611")
    page.click("#lookup-go")
    card = page.locator('#lookup-out .card[data-code="76937"]')
    card.wait_for(timeout=QUICK_TIMEOUT_MS)
    assert "Add-on" in card.inner_text()
    assert page.locator('#lookup-out .card[data-code="20611"]').count() == 1
    page.screenshot(path=str(ARTIFACTS / "lookup.png"), full_page=True)


def test_claim_check_shows_the_fix(page) -> None:  # type: ignore[no-untyped-def]
    _tab(page, "Claim check")
    page.locator("#claim textarea").fill("20610 76942")
    page.click("#check-go")
    out = page.locator("#check-out")
    page.locator('#check-out tr[data-code="20611"]').wait_for(timeout=QUICK_TIMEOUT_MS)
    text = out.inner_text()
    assert "FAIL" in text
    assert "Report 20611 instead of 20610 + 76942" in text
    assert page.locator('#check-out tr[data-code="76942"][data-status="removed"]').count() == 1
    assert "Corrected claim: 20611" in " ".join(text.split())
    page.screenshot(path=str(ARTIFACTS / "claim-check.png"), full_page=True)


def test_note_audit_reports_missing_patency(page) -> None:  # type: ignore[no-untyped-def]
    _tab(page, "Note audit")
    page.locator("#audit-note textarea").fill(NOTE_WITHOUT_PATENCY)
    page.locator("#audit-codes textarea").fill("76937")
    page.click("#audit-go")
    missing = page.locator(
        '#audit-out .card[data-code="76937"] tr[data-element="vessel_patency"]'
        '[data-status="missing"]'
    )
    missing.wait_for(timeout=QUICK_TIMEOUT_MS)
    present = page.locator('#audit-out tr[data-element="realtime_needle_entry"]')
    assert present.get_attribute("data-status") == "present"
    assert "Patency" in page.locator("#audit-out").inner_text()
    page.screenshot(path=str(ARTIFACTS / "note-audit.png"), full_page=True)


def test_chat_answers_knee_injection_with_verified_20611(page) -> None:  # type: ignore[no-untyped-def]
    page.locator("#question textarea").fill(KNEE)
    page.click("#ask")
    # The final answer (not the stream) is the one with the code table and the meta line.
    final = page.locator("#chatbot .answer .meta")
    final.wait_for(timeout=ANSWER_TIMEOUT_MS)
    page.screenshot(path=str(ARTIFACTS / "chat-knee.png"), full_page=True)
    answer = page.locator("#chatbot .answer").last
    row = answer.locator('table.codes tr[data-code="20611"]').first
    assert row.count() == 1, answer.inner_text()
    assert row.get_attribute("data-status") in ("verified", "corrected"), answer.inner_text()
    # 76942 must be flagged: removed from the claim or named in a finding, never verified.
    flagged_76942 = answer.locator('tr[data-code="76942"][data-status="removed"]').count() > 0
    finding_76942 = "76942" in answer.locator("ul.findings, details").all_inner_texts().__str__()
    assert flagged_76942 or finding_76942, answer.inner_text()
    assert answer.locator('tr[data-code="76942"][data-status="verified"]').count() == 0
    assert "ruleset builtin" in answer.locator(".meta").inner_text()
    # A conversation with a checked answer can be exported.
    page.click("#export-json")
    page.locator("#export-file a").first.wait_for(timeout=QUICK_TIMEOUT_MS)
    page.get_by_role("tab", name="Settings").click()
    page.locator("#settings-table table").wait_for(timeout=QUICK_TIMEOUT_MS)
    assert "embedded" in page.locator("#settings-table").inner_text()
    page.screenshot(path=str(ARTIFACTS / "settings.png"), full_page=True)
