"""The app's Gradio API through gradio_client: the same chat, check, lookup and audit calls.

Starts the real app (``python app.py --port <free port>``, embedded model, shared test
data dir) and calls its named endpoints like a script would.
"""

from __future__ import annotations

from collections.abc import Iterator

import helpers
import pytest

# The model answers on a shared 2-core CPU: allow more than the default per-test limit.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1800)]

ARTIFACTS = helpers.REPO / "test-artifacts"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A gradio_client Client on the real app, started as a subprocess."""
    from gradio_client import Client

    log = tmp_path_factory.mktemp("app") / "app.log"
    try:
        with helpers.run_app(
            helpers.shared_data_dir(), log, keep_log_as=ARTIFACTS / "app-api.log",
            backend="embedded", llm_timeout_s=900,
        ) as app:
            yield Client(app.url, verbose=False, download_files=False)
    except helpers.ProcessFailed as exc:
        pytest.fail(str(exc))


def test_endpoints_are_named(client) -> None:  # type: ignore[no-untyped-def]
    info = client.view_api(print_info=False, return_format="dict")
    names = set(info["named_endpoints"])
    assert {"/ask", "/check", "/lookup", "/audit"} <= names


def test_check_endpoint_corrects_the_knee_claim(client) -> None:  # type: ignore[no-untyped-def]
    result = client.predict("20610 76942", api_name="/check")
    assert result["verdict"] == "fail"
    assert result["corrected_claim_text"] == "20611"
    status = {c["code"]: c["status"] for c in result["codes"]}
    assert status == {"20610": "removed", "76942": "removed", "20611": "corrected"}
    fixes = [f["fix"]["description"] for f in result["findings"] if f["fix"]]
    assert any("20611" in d for d in fixes)


def test_check_endpoint_reports_bad_input(client) -> None:  # type: ignore[no-untyped-def]
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="not a code"):
        client.predict("7694x", api_name="/check")


def test_lookup_and_audit_endpoints(client) -> None:  # type: ignore[no-untyped-def]
    (record,) = client.predict("76937", api_name="/lookup")
    assert record["code"] == "76937"
    assert record["add_on"] is True
    note = ("Potential access sites were evaluated. Under real-time ultrasound guidance the "
            "needle entry into the vein was visualized. Images were saved.")
    audit = client.predict(note, "76937", api_name="/audit")
    (code,) = audit["codes"]
    status = {e["element"]: e["status"] for e in code["documentation"][0]["elements"]}
    assert status["vessel_patency"] == "missing"
    assert status["realtime_needle_entry"] == "present"


def test_ask_endpoint_answers_the_knee_question(client) -> None:  # type: ignore[no-untyped-def]
    answer = client.predict("What do I bill for an ultrasound-guided knee injection?",
                            api_name="/ask")
    status = {c["code"]: c["status"] for c in answer["codes"]}
    assert status.get("20611") in ("verified", "corrected"), answer
    assert status.get("76942") in (None, "removed"), answer
    flagged = {c["code"] for c in answer.get("removed", [])} | set(answer.get("warned", []))
    flagged |= {code for f in answer["findings"] for code in f["codes"]}
    assert "76942" in flagged, answer
    assert answer["ruleset"].startswith("builtin")
    assert answer["backend"].startswith("embedded")
