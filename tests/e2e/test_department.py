"""A department deployment, for real: two app replicas on 127.0.0.1 sharing one PostgreSQL
(audit log, feedback, question limit), one Chroma server and one OpenAI-compatible llama.cpp
server with the packaged 0.5B model; then the database and the Chroma server fail.

- 20 concurrent sessions, split across the replicas: every answer and every exported
  conversation is the session's own (tests/chatload.py), and the shared audit export holds
  every question asked exactly once, masked;
- one session (the same Gradio session id) sent to both replicas meets one question limit;
- the database is killed (SIGKILL) while sessions are asking: no answer fails, the replicas
  spool the audit records and replay them when the database is back, and the export matches
  the answers one to one (nothing lost, nothing twice);
- the Chroma server is stopped: answers say so in a banner and use the replica's own index,
  and go back to the server once it is up again.

The database is the session's PostgreSQL (tests/pg.py), with a database of its own here.
Which codes the model drafts is not judged here (the pipeline tests do that); that every
answer is shown, is the session's own and is audited once is.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chatload
import helpers
import pytest
from integration.llama_server import LlamaServer, ServerFailed, serve_llama

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1500)]

ARTIFACTS = helpers.REPO / "test-artifacts"
SESSIONS = 20
PER_MINUTE = 4  # each session below asks at most this many questions
LOAD_DEADLINE_S = 600.0
BANNER_RE = re.compile(r'<div class="banner">([^<]*)</div>')
PHI_QUESTIONS = [  # answered by the model flow; what the export holds must be masked
    "Ultrasound-guided knee injection for John Carter, MRN 4471823: what do I bill?",
    "Central line with ultrasound guidance for Maria Delgado, phone 617-555-0143: codes?",
]
PHI_WORDS = ["John Carter", "4471823", "Maria Delgado", "617-555-0143"]


class ChromaServer:
    """``chroma run`` on a copy of the shared index, stoppable and restartable on its port."""

    def __init__(self, path: Path, log_path: Path) -> None:
        self.path = path
        self.log_path = log_path
        self.port = helpers.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = Path(sys.executable).with_name("chroma")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(exe), "run", "--path", str(self.path), "--host", "127.0.0.1",
                 "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, **helpers.QUIET_ENV},
            )
        helpers.wait_http(f"{self.url}/api/v2/heartbeat", self.proc, self.log_path, 60,
                          what="chroma run")

    def stop(self) -> None:
        if self.proc is not None:
            helpers.stop_process(self.proc)


@pytest.fixture(scope="module")
def shared_index() -> Path:
    """The packaged guidelines indexed once in the shared test data dir (kept between runs)."""
    shared = helpers.shared_data_dir()
    if not (shared / "chroma" / "chroma.sqlite3").exists():
        subprocess.run(
            [str(Path(sys.executable).with_name("advisor")), "index", "--if-needed"],
            env=helpers.app_env(shared), check=True, timeout=900,
        )
    return shared / "chroma"


@pytest.fixture(scope="module")
def chroma(shared_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    root = tmp_path_factory.mktemp("chroma-server")
    shutil.copytree(shared_index, root / "db")
    server = ChromaServer(root / "db", root / "server.log")
    try:
        server.start()
    except helpers.ProcessFailed as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    try:
        with serve_llama(helpers.joined_model("small"), log) as srv:
            yield srv
    except ServerFailed as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def database(postgres: Any) -> str:
    if not postgres.running:
        postgres.start()
    return str(postgres.create_database("department"))


@pytest.fixture(scope="module")
def asked() -> list[str]:
    """Every question the replicas answered in this module, in any order."""
    return []


@pytest.fixture(scope="module")
def replicas(
    chroma: ChromaServer, llama: LlamaServer, database: str, shared_index: Path,
    asked: list[str], tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[list[helpers.AppProcess]]:
    """Two replicas, each with its own data dir (holding a copy of the index to fall back on),
    warmed up: index, embeddings and the database reached, one answer each."""
    settings = {
        "backend": "openai", "openai_base_url": llama.base_url, "openai_model": llama.model_id,
        "chroma_url": chroma.url, "database_url": database, "max_tokens": 128,
        "llm_timeout_s": 120, "max_questions_per_minute": PER_MINUTE,
    }
    apps: list[helpers.AppProcess] = []
    with contextlib.ExitStack() as stack:
        try:
            for name in ("a", "b"):
                data = helpers.private_data_dir(tmp_path_factory.mktemp(f"replica-{name}"),
                                                presets=())
                log = tmp_path_factory.mktemp(f"replica-{name}-log") / "app.log"
                apps.append(stack.enter_context(helpers.run_app(
                    data, log, keep_log_as=ARTIFACTS / f"app-replica-{name}.log", **settings)))
        except helpers.ProcessFailed as exc:
            pytest.fail(str(exc))
        for app in apps:
            html = ask(app.url, "lookup 76942")  # waits for the replica's warm-up
            assert "error-box" not in html, html
            asked.append("lookup 76942")
        yield apps


@pytest.fixture(scope="module")
def scrub() -> Any:
    from advisor.privacy import scrub

    return scrub


def code_steps(catalog: Any, codes: list[str], forms: tuple[str, ...], data_dir: Path
               ) -> list[chatload.Step]:
    """Code-only questions with the code table the deterministic path shows for each."""
    from advisor.pipeline import Advisor
    from advisor.settings import Settings

    local = Advisor(Settings(data_dir=data_dir, backend="none"), catalog)
    steps = []
    for code, form in zip(codes, forms, strict=True):
        question = form.format(code)
        steps.append(chatload.Step(question, "code", rows=chatload._rows(local.ask(question))))
    return steps


def active_codes() -> tuple[Any, list[str]]:
    from knowledge.catalog import load_catalog

    catalog = load_catalog()
    return catalog, sorted(c for c, e in catalog.codes.items() if e.active)


def spooled(apps: list[helpers.AppProcess]) -> int:
    return sum(len(list((a.data_dir / "audit-spool").glob("*.json"))) for a in apps)


def wait_until(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:g} s")
        time.sleep(0.5)


def export(database: str, tmp_path: Path) -> list[dict[str, Any]]:
    """`advisor audit export --json` against the shared database, as compliance staff run it."""
    out = subprocess.run(
        [str(Path(sys.executable).with_name("advisor")), "audit", "export", "--json"],
        env=helpers.app_env(tmp_path / "compliance", database_url=database),
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert out.returncode == 0, out.stderr
    (tmp_path / "export.json").write_text(out.stdout)
    return list(json.loads(out.stdout))


def assert_export_matches(
    database: str, tmp_path: Path, asked: list[str], scrub: Any
) -> list[dict[str, Any]]:
    rows = export(database, tmp_path)
    got = collections.Counter(r["question"] for r in rows)
    want = collections.Counter(scrub(q) for q in asked)
    assert got == want, {"missing": want - got, "extra or twice": got - want}
    assert len({r["id"] for r in rows}) == len(rows)
    text = json.dumps(rows)
    for word in PHI_WORDS:
        assert word not in text, word
    return rows


def ask(url: str, question: str, session_hash: str | None = None) -> str:
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=False)
    if session_hash is not None:
        client.session_hash = session_hash
    chat, _box = client.predict(question, [], api_name="/chat")
    return chatload._answer_html(chat)


def test_twenty_sessions_across_two_replicas(
    replicas: list[helpers.AppProcess], database: str, asked: list[str], scrub: Any,
    tmp_path: Path,
) -> None:
    catalog, codes = active_codes()
    steps: list[list[chatload.Step]] = []
    for i in range(SESSIONS):
        session = code_steps(catalog, codes[2 * i: 2 * i + 2], ("lookup {}", "{}"), tmp_path)
        if i < 2:
            session.insert(0, chatload.Step(chatload.MODEL_QUESTIONS[i], "model"))
        elif i < 2 + len(PHI_QUESTIONS):
            session.insert(0, chatload.Step(PHI_QUESTIONS[i - 2], "model"))
        steps.append(session)
    reports, wall = chatload.run_load([a.url for a in replicas], steps, LOAD_DEADLINE_S)
    print(f"\n[measured] {SESSIONS} sessions on 2 replicas: "
          f"{sum(len(r.results) for r in reports)} answers in {wall:.1f} s")
    asked += [s.question for session in steps for s in session]
    assert chatload.problems(reports, scrub) == []
    wait_until(lambda: spooled(replicas) == 0, 60, "spools empty")
    rows = assert_export_matches(database, tmp_path, asked, scrub)
    assert {r["question"] for r in rows} >= {scrub(q) for q in PHI_QUESTIONS}
    assert "<PERSON>" in json.dumps(rows)
    for app in replicas:
        assert app.proc.poll() is None
        assert "Traceback" not in app.log_text()


def test_one_session_meets_one_limit_on_both_replicas(
    replicas: list[helpers.AppProcess], asked: list[str], tmp_path: Path,
) -> None:
    _catalog, codes = active_codes()
    session = "department-shared-session"
    questions = [f"lookup {c}" for c in codes[100: 100 + PER_MINUTE]]
    for i, question in enumerate(questions):  # alternately on each replica
        html = ask(replicas[i % 2].url, question, session)
        assert "error-box" not in html, html
        asked.append(question)
    refused = ask(replicas[0].url, f"lookup {codes[100 + PER_MINUTE]}", session)
    assert "error-box" in refused
    assert f"the limit is {PER_MINUTE} a minute" in refused
    # Another session is not held back.
    assert "error-box" not in ask(replicas[1].url, f"lookup {codes[110]}", "another-session")
    asked.append(f"lookup {codes[110]}")


def test_database_killed_mid_run(
    replicas: list[helpers.AppProcess], database: str, postgres: Any, asked: list[str],
    scrub: Any, tmp_path: Path,
) -> None:
    catalog, codes = active_codes()
    sessions = 10
    steps = [code_steps(catalog, codes[120 + 4 * i: 124 + 4 * i],
                        ("check {}", "{}", "lookup {}", "check {}"), tmp_path)
             for i in range(sessions)]
    total = sum(len(s) for s in steps)
    reports = [chatload.SessionReport(i) for i in range(sessions)]
    threads = [threading.Thread(target=chatload.run_session,
                                args=(replicas[i % 2].url, i, s, reports[i]), daemon=True)
               for i, s in enumerate(steps)]

    def answered() -> int:
        return sum(len(r.results) for r in reports)

    most_spooled = 0
    for t in threads:
        t.start()
    try:
        wait_until(lambda: answered() >= total // 4, LOAD_DEADLINE_S, "first answers")
        postgres.kill()  # a crash, in the middle of the run
        killed_at = answered()

        def spooling() -> bool:
            nonlocal most_spooled
            most_spooled = max(most_spooled, spooled(replicas))
            return most_spooled > 0 and answered() >= killed_at + total // 4

        wait_until(spooling, LOAD_DEADLINE_S, "answers while the database is down")
    finally:
        postgres.start()
    for t in threads:
        t.join(timeout=LOAD_DEADLINE_S)
    asked += [s.question for session in steps for s in session]
    assert chatload.problems(reports) == []  # no answer failed, none went to another session
    assert answered() == total
    wait_until(lambda: spooled(replicas) == 0, 90, "spools replayed")
    assert most_spooled > 0
    assert_export_matches(database, tmp_path, asked, scrub)
    logs = "".join(a.log_text() for a in replicas)
    assert "kept for retry" in logs
    assert "audit log writable again" in logs
    for app in replicas:
        assert app.proc.poll() is None


def test_chroma_server_down_uses_the_local_index(
    replicas: list[helpers.AppProcess], chroma: ChromaServer, asked: list[str], database: str,
    scrub: Any, tmp_path: Path,
) -> None:
    question = chatload.MODEL_QUESTIONS[2]  # goes through retrieval
    chroma.stop()
    try:
        html = ask(replicas[1].url, question)
        asked.append(question)
        assert "error-box" not in html, html
        (banner,) = BANNER_RE.findall(html)
        assert "cannot be reached" in banner and chroma.url in banner, banner
        assert 'data-code="' in html, html  # a code table, from the replica's own index
    finally:
        chroma.start()

    def back() -> bool:
        html = ask(replicas[1].url, question)
        asked.append(question)
        assert "error-box" not in html, html
        return "cannot be reached" not in html

    wait_until(back, 90, "answers from the Chroma server again")
    wait_until(lambda: spooled(replicas) == 0, 60, "spools empty")
    assert_export_matches(database, tmp_path, asked, scrub)
