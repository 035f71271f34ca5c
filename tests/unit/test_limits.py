"""Input limits: question length, document type and size, questions per minute per session.

Every refusal says which limit, by how much and which setting raises it, and nothing behind
it runs: no model call, no index write, no audit entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_ui import ScriptedAdvisor
from typer.testing import CliRunner

from advisor.cli import app as cli
from advisor.limits import InputRejected, RateLimiter, check_question, document_problem
from advisor.settings import Settings
from knowledge.catalog import clear_cache, load_catalog

runner = CliRunner()


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Request:
    """What the chat handler reads of gr.Request."""

    def __init__(self, session_hash: str) -> None:
        self.session_hash = session_hash


# ------------------------------------------------------------------------ the checks


def test_question_at_the_limit_passes_and_over_it_is_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, max_question_chars=40)
    assert check_question("  " + "a" * 40 + "\n", settings) == "a" * 40
    with pytest.raises(InputRejected) as err:
        check_question("b" * 41, settings)
    message = str(err.value)
    assert "41 characters" in message and "limit is 40" in message
    assert "ADVISOR_MAX_QUESTION_CHARS" in message


def test_document_type_and_size(tmp_path: Path) -> None:
    ok = tmp_path / "policy.MD"
    ok.write_text("# Policy\n\n76942 once per encounter.\n")
    assert document_problem(ok, 1) is None
    for name in ("memo.docx", "scan.png", "noext"):
        f = tmp_path / name
        f.write_bytes(b"data")
        problem = document_problem(f, 1)
        assert problem is not None and "unsupported file type" in problem, name
        assert ".md, .txt, .html or .pdf" in problem
    big = tmp_path / "big.txt"
    big.write_bytes(b"word " * (1024 * 1024 // 5 + 100))
    problem = document_problem(big, 1)
    assert problem is not None
    assert "1.0 MB, over the 1 MB limit" in problem and "ADVISOR_MAX_UPLOAD_MB" in problem


def test_rate_limit_is_a_sliding_minute_per_key() -> None:
    clock = Clock()
    limiter = RateLimiter(3, clock=clock)
    for _ in range(3):
        limiter.check("a")
        clock.now += 10
    with pytest.raises(InputRejected) as err:
        limiter.check("a")  # 3 in the last 30 s
    assert "limit is 3 a minute" in str(err.value)
    assert "Try again in 30 s" in str(err.value)
    assert "ADVISOR_MAX_QUESTIONS_PER_MINUTE" in str(err.value)
    limiter.check("b")  # another session is not affected
    clock.now += 29.5
    with pytest.raises(InputRejected):
        limiter.check("a")  # refusals are not counted, but the first event is 59.5 s old
    clock.now += 0.5
    limiter.check("a")  # the first question left the window
    with pytest.raises(InputRejected):
        limiter.check("a")


def test_rate_limit_zero_means_no_limit() -> None:
    limiter = RateLimiter(0, clock=Clock())
    for _ in range(1000):
        limiter.check("a")


def test_rate_limiter_forgets_idle_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    from advisor import limits

    monkeypatch.setattr(limits, "_MAX_KEYS", 10)
    clock = Clock()
    limiter = RateLimiter(5, clock=clock)
    for i in range(11):
        limiter.check(f"s{i}")
    clock.now += 61
    limiter.check("new")
    assert set(limiter._events) == {"new"}


# ----------------------------------------------------------------------------- the CLI


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ADVISOR_DATA_DIR", str(tmp_path / "data"))
    clear_cache()
    return tmp_path / "data"


def test_cli_ask_refuses_an_over_long_question(data_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADVISOR_MAX_QUESTION_CHARS", "50")
    r = runner.invoke(cli, ["ask", "--no-llm", "knee injection " * 10])
    assert r.exit_code == 2, r.output
    assert "149 characters; the limit is 50" in r.output
    assert "Traceback" not in r.output
    assert not (data_dir / "audit.sqlite3").exists(), "nothing was answered or recorded"


def test_cli_index_refuses_unsupported_and_oversized_files(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADVISOR_MAX_UPLOAD_MB", "1")
    memo = tmp_path / "memo.docx"
    memo.write_bytes(b"PK\x03\x04 not really a docx")
    big = tmp_path / "big.txt"
    big.write_bytes(b"word " * (1024 * 1024 // 5 + 1000))
    good = tmp_path / "good.md"
    good.write_text("# Good\n\nText.\n")
    r = runner.invoke(cli, ["index", str(good), str(memo), str(big)])
    assert r.exit_code == 2, r.output
    assert "Not indexed (nothing was changed)" in r.output
    assert f"{memo}: unsupported file type .docx" in r.output
    assert f"{big}: the file is 1.0 MB, over the 1 MB limit" in r.output
    assert str(good) not in r.output
    assert "Traceback" not in r.output
    assert not (data_dir / "chroma").exists(), "refused before the index was opened"


# ----------------------------------------------------------------------------- the app


def _app(tmp_path: Path, advisor: Any, **settings: Any) -> Any:
    import app

    s = Settings(data_dir=tmp_path, backend="none", **settings)
    return app.AdvisorApp(s, load_catalog(), advisor=advisor)


def test_chat_refuses_an_over_long_question_without_a_model_call(tmp_path: Path) -> None:
    advisor = ScriptedAdvisor()
    state = _app(tmp_path, advisor, max_question_chars=100)
    question = "Is 76942 billed with 20610? " * 20
    chat, turns, box = list(state.chat(question, [], []))[-1]
    assert advisor.histories == [], "the advisor was never asked"
    assert "error-box" in chat[-1]["content"]
    assert "the limit is 100" in chat[-1]["content"]
    assert len(chat[0]["content"]) < 320, "the echoed question is cut short"
    assert turns == []
    assert box == question, "the text stays in the box to be shortened"


def test_chat_rate_limit_per_session(tmp_path: Path) -> None:
    advisor = ScriptedAdvisor()
    state = _app(tmp_path, advisor, max_questions_per_minute=2)
    alice, bob = Request("alice"), Request("bob")
    chat: list[Any] = []
    turns: list[Any] = []
    for q in ("knee?", "and the hip?"):
        chat, turns, _ = list(state.chat(q, chat, turns, alice))[-1]
    assert len(advisor.histories) == 2 and len(turns) == 2
    chat, turns, box = list(state.chat("and the shoulder?", chat, turns, alice))[-1]
    assert len(advisor.histories) == 2, "no model call over the limit"
    assert "limit is 2 a minute" in chat[-1]["content"]
    assert "Try again in" in chat[-1]["content"]
    assert len(turns) == 2 and box == "and the shoulder?"
    # Another session has its own allowance.
    _, bob_turns, _ = list(state.chat("knee?", [], [], bob))[-1]
    assert len(bob_turns) == 1 and len(advisor.histories) == 3


def test_api_ask_refuses_an_over_long_question(tmp_path: Path) -> None:
    import gradio as gr

    class NoModel:
        def ask(self, question: str) -> Any:
            raise AssertionError("the advisor must not be asked")

    state = _app(tmp_path, NoModel(), max_question_chars=20)
    with pytest.raises(gr.Error) as err:
        state.api_ask("x" * 21)
    assert "the limit is 20" in str(err.value.message)


def test_chat_event_gets_the_gradio_session(tmp_path: Path) -> None:
    """The chat event is wired so Gradio hands it the request (the session to rate-limit)."""
    import gradio as gr
    from gradio.helpers import special_args

    import app

    state = _app(tmp_path, ScriptedAdvisor())
    demo = app.build_ui(state)
    fn = next(f.fn for f in demo.fns.values() if f.api_name == "chat")
    request = gr.Request(session_hash="s1")
    inputs, *_ = special_args(fn, inputs=["knee?", [], []], request=request)
    assert inputs[-1] is request


@pytest.mark.parametrize("question", ["", "   \n "])
def test_cli_ask_refuses_an_empty_question_with_a_hint(data_dir: Path, question: str) -> None:
    r = runner.invoke(cli, ["ask", "--no-llm", question])
    assert r.exit_code == 2, r.output
    assert "Nothing to ask" in r.output and "20610 76942" in r.output
    assert not (data_dir / "audit.sqlite3").exists(), "nothing was answered or recorded"
