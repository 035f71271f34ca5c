"""Faults while the real app answers: the model server hangs or dies mid-answer, the audit
log is locked.

The app runs as a subprocess on 127.0.0.1 with the OpenAI-compatible backend, drafting
through a real ``python -m llama_cpp.server`` on the packaged 0.5B model (also on
127.0.0.1). While the server is generating a draft it is stopped (SIGSTOP: the app's time
limit runs out) or killed (SIGKILL). Each time the chat must show the deterministic
fallback answer (a banner saying the model was unavailable, retrieval candidates marked
not verified), never an error or a trace, and the app must go on serving.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import helpers
import pytest
from integration.llama_server import LlamaServer, ServerFailed, serve_llama

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

ARTIFACTS = helpers.REPO / "test-artifacts"
MODEL_TIMEOUT_S = 10  # the app's llm_timeout_s: a stopped server is given up on after this
ROW_RE = re.compile(r'data-code="([^"]+)" data-status="([^"]+)"')
BANNER_RE = re.compile(r'<div class="banner">([^<]*)</div>')
THYROID = "What do I bill for an ultrasound-guided thyroid biopsy?"
RENAL = "Renal ultrasound of both kidneys and bladder for hydronephrosis, how is it billed?"
KNEE_ROWS = [("20611", "corrected"), ("20610", "removed"), ("76942", "removed")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """llama_cpp.server on the packaged 0.5B model, this module's own (it gets killed)."""
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    try:
        with serve_llama(helpers.joined_model("small"), log) as srv:
            yield srv
    except ServerFailed as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def app(
    server: LlamaServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[helpers.AppProcess]:
    data = helpers.private_data_dir(tmp_path_factory.mktemp("faults-data"), presets=())
    log = tmp_path_factory.mktemp("faults-app") / "app.log"
    try:
        with helpers.run_app(
            data, log, keep_log_as=ARTIFACTS / "app-faults.log",
            backend="openai", openai_base_url=server.base_url, openai_model=server.model_id,
            max_tokens=256, llm_timeout_s=MODEL_TIMEOUT_S,
        ) as proc:
            yield proc
    except helpers.ProcessFailed as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def client(app: helpers.AppProcess) -> Any:
    from gradio_client import Client

    return Client(app.url, verbose=False, download_files=False)


def _answer(chat: list[dict[str, Any]]) -> str:
    content = chat[-1]["content"]
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content)


def _ask(client: Any, question: str) -> str:
    chat, _box = client.predict(question, [], api_name="/chat")
    return _answer(chat)


def _ask_and_interrupt(client: Any, question: str, pid: int, sig: signal.Signals) -> str:
    """Ask, send ``sig`` to the server once it is working on the draft, return the answer."""
    job = client.submit(question, [], api_name="/chat")
    helpers.wait_cpu(pid, busy=True, timeout_s=60)
    time.sleep(1.0)  # well into the draft: a 256-token draft takes the 0.5B model seconds
    os.kill(pid, sig)
    chat, _box = job.result(timeout=MODEL_TIMEOUT_S + 120)
    return _answer(chat)


def _assert_fallback(html: str, why: str, expected_code: str, log: str) -> None:
    assert "error-box" not in html, html
    assert "Traceback" not in html
    (banner,) = BANNER_RE.findall(html)
    # The chat speaks to the clinician; the technical reason is the operator's, in the log.
    assert "The language model is unavailable right now" in banner, banner
    assert why not in html and "ADVISOR_" not in html and "advisor check" not in html
    assert why in log
    assert "come from the guideline search" in banner
    rows = ROW_RE.findall(html)
    assert rows, html
    assert {status for _, status in rows} == {"not_verified"}, rows
    assert expected_code in {code for code, _ in rows}, rows
    assert "pipeline.model_unavailable" in html


def test_answer_shown_while_the_audit_log_is_locked(client: Any, app: helpers.AppProcess) -> None:
    from advisor.audit import AuditLog

    path = app.data_dir / "audit.sqlite3"
    assert ROW_RE.findall(_ask(client, "20610 76942")) == KNEE_ROWS  # creates the log
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        html = _ask(client, "check 20610 76942")
        assert ROW_RE.findall(html) == KNEE_ROWS
        assert "error-box" not in html
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert ROW_RE.findall(_ask(client, "20610 76942")) == KNEE_ROWS  # writes the waiting one
    assert "kept for retry" in app.log_text()
    questions = [e["question"] for e in AuditLog(path).entries()]
    assert questions == ["20610 76942", "check 20610 76942", "20610 76942"]


def test_server_hangs_then_dies_mid_answer(
    client: Any, app: helpers.AppProcess, server: LlamaServer
) -> None:
    pid = server.pid

    # Hung: the server stops while drafting; the app's time limit runs out.
    started = time.monotonic()
    html = _ask_and_interrupt(client, THYROID, pid, signal.SIGSTOP)
    waited = time.monotonic() - started
    _assert_fallback(html, "did not answer within the time limit", "10005", app.log_text())
    assert waited >= MODEL_TIMEOUT_S * 0.9
    # Still serving while the server hangs: code questions and the claim check need no model.
    assert ROW_RE.findall(_ask(client, "20610 76942")) == KNEE_ROWS
    assert client.predict("20610 76942", api_name="/check")["corrected_claim_text"] == "20611"
    os.kill(pid, signal.SIGCONT)
    helpers.wait_cpu(pid, busy=False, timeout_s=120)  # it finishes the abandoned draft

    # Dead: the server is killed while drafting.
    html = _ask_and_interrupt(client, RENAL, pid, signal.SIGKILL)
    _assert_fallback(html, "Cannot reach the model server", "76770", app.log_text())
    # Still serving: the next model question falls back at once, lookups work.
    started = time.monotonic()
    html = _ask(client, THYROID)
    _assert_fallback(html, "Cannot reach the model server", "10005", app.log_text())
    assert time.monotonic() - started < MODEL_TIMEOUT_S
    (record,) = client.predict("76937", api_name="/lookup")
    assert record["code"] == "76937"
    assert ROW_RE.findall(_ask(client, "20610 76942")) == KNEE_ROWS

    assert app.proc.poll() is None, "the app exited"
    log = app.log_text()
    assert "Traceback" not in log, log[-4000:]
    assert "draft failed" in log
