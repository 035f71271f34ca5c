"""The advisor's web app (Gradio): chat, lookup, claim check, note audit and settings.

A thin layer over ``advisor``: every verdict comes from the deterministic checker, every
element of a note audit from ``guardrails.audit``; this module only wires them to widgets.

    python app.py [--host H] [--port P]      (same as: advisor serve)

Binds 127.0.0.1 unless told otherwise, optional username/password from settings, Gradio
analytics off. The model loads in a background thread; lookups, claim checks and note
audits work before it is ready.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import gradio as gr

    from advisor.pipeline import Advisor
    from advisor.settings import Settings
    from knowledge.catalog import Catalog

log = logging.getLogger("advisor.app")

# Concurrent model calls per backend: llama.cpp runs one generation at a time in-process.
MODEL_CONCURRENCY = {"embedded": 1, "openai": 4, "ollama": 2, "none": 8}
FAST_CONCURRENCY = 8  # lookups, checks, audits: no model, milliseconds each
WAIT_FOR_MODEL_S = 900.0
ASK_IDLE = "Ask"
ASK_BUSY = "Answering… (Ask again queues your next question)"

CSS = """
.badge {display:inline-block;padding:1px 8px;border-radius:10px;font-size:0.85em;
        font-weight:600;white-space:nowrap}
.badge-verified {background:#d1fadf;color:#05603a}
.badge-corrected {background:#fef0c7;color:#93370d}
.badge-removed {background:#fee4e2;color:#912018}
.badge-unverified {background:#e4e7ec;color:#344054}
.badge-info {background:#e0f2fe;color:#075985}
table.codes, table.facts {border-collapse:collapse;margin:6px 0;width:100%}
table.codes th, table.codes td, table.facts th, table.facts td
  {border:1px solid #d0d5dd;padding:3px 6px;text-align:left;vertical-align:top}
table.codes caption {text-align:left;font-weight:600}
td.code {font-family:monospace;font-weight:600;white-space:nowrap}
table.codes th, td.status, td.num {white-space:nowrap}
.rule {border-bottom:1px dotted #98a2b3;cursor:help}
.lead {font-weight:600;margin:4px 0}
pre.facts {white-space:pre-wrap;font-size:0.85em}
.muted {color:#667085;font-size:0.9em}
.banner {background:#fffaeb;border-left:4px solid #f79009;padding:4px 8px;margin:4px 0}
.error-box {background:#fef3f2;border-left:4px solid #d92d20;padding:6px 10px}
.answer-text {white-space:pre-wrap;margin:4px 0}
.fix {color:#05603a}
.passage {white-space:pre-wrap;font-size:0.9em;border-left:3px solid #d0d5dd;padding-left:6px}
.card {border:1px solid #d0d5dd;border-radius:8px;padding:8px 12px;margin:8px 0}
"""


# Scrolls the chat so the last finished answer starts at the top of the chat's view.
SCROLL_TO_ANSWER_JS = """() => {
  const go = () => {
    const all = document.querySelectorAll('#chatbot .answer:not(.drafting)');
    const last = all[all.length - 1];
    if (!last) return;
    let box = last.parentElement;
    while (box && !(box.scrollHeight > box.clientHeight &&
                    /(auto|scroll)/.test(getComputedStyle(box).overflowY))) {
      box = box.parentElement;
    }
    if (box) box.scrollTop += last.getBoundingClientRect().top
                              - box.getBoundingClientRect().top - 8;
  };
  setTimeout(go, 150); setTimeout(go, 600);
}"""


def _quiet_environment() -> None:
    """Analytics, telemetry and hub look-ups off before gradio, chromadb or torch load."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


EXPORT_PREFIX = "advisor-export-"


def sweep_orphan_exports(ttl_s: float) -> int:
    """Remove export folders left by app processes that are gone; returns how many.

    A process killed outright cannot run its exit clean-up, so each app names its folder
    with its process id and the next app to start removes the folders of processes no
    longer running (this user's only). A folder without an id (an older version's) goes
    once it is older than ``ttl_s``.
    """
    removed = 0
    for folder in Path(tempfile.gettempdir()).glob(f"{EXPORT_PREFIX}*"):
        try:
            info = folder.stat()
            if not folder.is_dir() or info.st_uid != os.getuid():
                continue
            head = folder.name[len(EXPORT_PREFIX):].split("-", 1)[0]
            if head.isdigit() and "-" in folder.name[len(EXPORT_PREFIX):]:
                if int(head) == os.getpid() or _running(int(head)):
                    continue
            elif info.st_mtime > time.time() - ttl_s:
                continue
            shutil.rmtree(folder)
            removed += 1
        except OSError:
            log.warning("could not remove an orphaned export folder", exc_info=True)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def exit_on_sigterm() -> None:
    """Turn SIGTERM (a service manager stopping the app) into a normal exit, so the exit
    clean-up runs: exported conversations removed, the audit log closed."""
    import signal
    import sys
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def _stop(signum: int, frame: Any) -> None:
        log.info("stopping (SIGTERM)")
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, _stop)


class AdvisorApp:
    """The app's state (settings, catalog, advisor, warm-up) and its event handlers."""

    def __init__(self, settings: Settings, catalog: Catalog | None = None,
                 advisor: Advisor | None = None) -> None:
        """Build the advisor lazily-loading pieces; call :meth:`start_warmup` to load them."""
        from advisor.pipeline import Advisor
        from advisor.warmup import LazyRetriever, Warmup
        from knowledge.catalog import load_catalog

        self.settings = settings
        if catalog is None:
            cms = settings.cms_dir if settings.cms_dir.exists() else None
            catalog = load_catalog(cms_dir=cms)
        self.catalog = catalog
        self.memo = LazyRetriever(self._make_retriever)
        self.advisor = advisor or Advisor(settings, catalog, retriever=self.memo)
        self.warmup = Warmup([("index", self._warm_index), ("model", self._warm_model)])
        # Exported conversations hold what users typed: each is removed once it is older than
        # settings.export_ttl_s, and the whole folder when the app is closed, collected or the
        # process exits.
        sweep_orphan_exports(settings.export_ttl_s)
        self.export_dir = Path(tempfile.mkdtemp(prefix=f"{EXPORT_PREFIX}{os.getpid()}-"))
        self._remove_exports = weakref.finalize(
            self, shutil.rmtree, str(self.export_dir), ignore_errors=True
        )
        self._pruned_at = 0.0
        self.sources = catalog.sources  # key -> Source: shown as links with titles
        from advisor.audit import open_audit
        from advisor.limits import make_rate_limiter

        # Every answer shown is recorded (masked) with its verdicts; a failed write waits in
        # the spool, is replayed by the log itself and never blocks the answer.
        self.audit = open_audit(settings)
        # Chat questions per session: in the shared database when replicas share one.
        self.rate = make_rate_limiter(settings, self.audit.engine)

    # -- warm-up ------------------------------------------------------------------------
    def _make_retriever(self) -> Any:
        from advisor.retriever import Retriever

        return Retriever(self.settings, self.catalog)

    def _warm_index(self) -> None:
        from advisor.index import IndexUnavailable, build_index

        try:
            self.memo.warm_up()
        except IndexUnavailable:
            # First run on this data dir: build the built-in guideline index once.
            log.info("no index yet: building the built-in index")
            build_index(self.settings, catalog=self.catalog, embedder=self.memo.inner.embedder)
            self.memo.warm_up()

    def _warm_model(self) -> None:
        from advisor.llm import ModelUnavailable

        if str(self.settings.backend) == "none":
            return
        model = self.advisor.chat_model()
        if model is None:
            raise ModelUnavailable(getattr(self.advisor, "_model_error", None)
                                   or "The chat model could not be built.")
        load = getattr(model, "load", None)
        if callable(load):  # the embedded model: read the GGUF now, not on the first question
            load()

    def start_warmup(self) -> None:
        """Load index and model in a background thread; migrate and replay the audit log."""
        self.warmup.start()
        self.audit.start()

    def status(self) -> str:
        """The status line at the top of the page (its timer also prunes old exports)."""
        from advisor.warmup import status_line

        if time.monotonic() - self._pruned_at > 60:
            self.prune_exports()
        return status_line(self.warmup, str(self.settings.backend))

    def prune_exports(self) -> int:
        """Remove exports older than ``settings.export_ttl_s``; returns how many."""
        self._pruned_at = time.monotonic()
        cutoff = time.time() - self.settings.export_ttl_s
        removed = 0
        for folder in self.export_dir.glob("export-*"):
            try:
                if folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder)
                    removed += 1
            except OSError:
                log.warning("could not remove an old export folder", exc_info=True)
        return removed

    def close(self) -> None:
        """Remove every export now (also done at exit)."""
        self._remove_exports()

    def settings_view(self) -> tuple[str, dict[str, Any]]:
        """Settings table and raw model status."""
        from advisor.llm import model_status
        from advisor.ui import settings_markdown

        try:
            st = model_status(self.settings)
        except Exception as exc:  # a broken status probe must not break the tab
            st = {"error": str(exc)}
        return settings_markdown(self.settings, st, self.warmup.summary()), st

    # -- chat ---------------------------------------------------------------------------
    def chat(
        self, message: str, chat: list[dict[str, Any]] | None, turns: list[Any] | None,
        request: Any = None,
    ) -> Iterator[tuple[list[dict[str, Any]], list[Any], str | None]]:
        """Stream one answer into the chat; the final message holds the checked code table.

        Yields (chat, turns, box): ``box`` is what the question box should hold, or None to
        leave it as the person is typing it. The box is emptied once, when the question is
        taken; later updates never touch it, so a next question typed while this one is
        answered is kept (and the app asks it when this answer is done). While drafting,
        the message says how long it has been drafting. A question over the length limit,
        or over the session's questions per minute, gets a message instead, never reaches
        the model, and stays in the box.
        """
        from advisor.conversation import ChatTurn
        from advisor.limits import InputRejected, check_question
        from advisor.ui import (
            answer_html,
            drafting_html,
            error_html,
            error_message,
            esc,
        )

        chat = list(chat or [])
        turns = list(turns or [])
        question = (message or "").strip()
        if not question:
            yield chat, turns, None
            return
        try:
            check_question(question, self.settings)
            self.rate.check(getattr(request, "session_hash", None) or "local")
        except InputRejected as exc:
            shown = question if len(question) <= 300 else question[:300] + "…"
            chat.append({"role": "user", "content": esc(shown)})
            chat.append({"role": "assistant", "content": error_html(str(exc))})
            yield chat, turns, message
            return
        # sanitize_html is off so the tables render; everything shown is escaped here instead.
        chat.append({"role": "user", "content": esc(question)})
        chat.append({"role": "assistant", "content": drafting_html("", 0.0, "Working…")})
        yield chat, turns, ""
        started = time.monotonic()
        try:
            final: Any = None
            for text, note, item in self._drafting(question, turns):
                if item is not None:
                    final = item
                    break
                chat[-1]["content"] = drafting_html(text, time.monotonic() - started, note)
                yield chat, turns, None
            if final is None:
                raise RuntimeError("the advisor returned no answer")
            data = final.to_json()
            passages = {str(c["id"]): c["text"] for c in data.get("citations") or []
                        if c.get("text")}
            turns.append(ChatTurn(question=question, answer=data, passages=passages,
                                  audit_id=self._record(final)))
            log.info("answered via %s in %s ms: %s", data.get("path"),
                     data.get("timings_ms", {}).get("total"),
                     ", ".join(f"{c['code']} {c['status']}" for c in data.get("codes", [])))
            chat[-1]["content"] = answer_html(data, passages, self.sources)
        except Exception as exc:  # shown as a message; the trace goes to the server log
            log.exception("chat failed")
            chat[-1]["content"] = error_html(error_message(exc))
        yield chat, turns, None

    def _drafting(
        self, question: str, turns: list[Any]
    ) -> Iterator[tuple[str, str | None, Any]]:
        """(text so far, note, None) at least every second while the answer is made, then
        ('', None, the Answer). The advisor runs in a worker thread, so the elapsed time
        shows even while a backend that does not stream is drafting."""
        import queue
        import threading

        from advisor.pipeline import Answer

        items: queue.Queue[tuple[str, Any]] = queue.Queue()

        def work() -> None:
            try:
                if str(self.settings.backend) != "none":
                    waited = time.monotonic()
                    while not self.warmup.wait(1.0):
                        if time.monotonic() - waited > WAIT_FOR_MODEL_S:
                            break
                        items.put(("wait", f"Waiting for the model to load: "
                                           f"{self.warmup.summary()}"))
                history = [Answer.model_validate(t.answer) for t in turns]
                for item in self.advisor.stream(question, history=history):
                    items.put(("text", item) if isinstance(item, str) else ("answer", item))
            except BaseException as exc:  # handed to the chat handler, which shows it
                items.put(("error", exc))
            finally:
                items.put(("done", None))

        threading.Thread(target=work, name="advisor-chat", daemon=True).start()
        text, note = "", None
        while True:
            try:
                kind, value = items.get(timeout=1.0)
            except queue.Empty:
                yield text, note, None  # the elapsed time moves on
                continue
            if kind == "text":
                text, note = text + value, None
            elif kind == "wait":
                note = value
            elif kind == "error":
                raise value
            elif kind == "answer":
                yield "", None, value
                return
            else:
                return
            yield text, note, None

    def _record(self, answer: Any) -> str | None:
        """Write the answer to the audit log; None if even queueing it failed."""
        from advisor.audit import AuditEntry

        try:
            return self.audit.record(AuditEntry.from_answer(answer))
        except Exception:  # the answer is already shown; the log says what went wrong
            log.exception("audit record failed")
            return None

    def feedback(self, chat: list[dict[str, Any]] | None, turns: list[Any] | None,
                 data: gr.LikeData, comment: str = "") -> str:
        """Store a thumbs up/down, with the optional comment typed, for the answer it was
        given on."""
        from advisor.conversation import append_feedback, feedback_record
        from advisor.ui import error_message

        try:
            index = data.index[0] if isinstance(data.index, list | tuple) else data.index
            before = (chat or [])[: int(index) + 1]
            n = sum(1 for m in before if m.get("role") == "assistant")
            turns = turns or []
            if n < 1 or n > len(turns):
                return "That message has no checked answer to rate."
            turn = turns[n - 1]
            liked = bool(data.liked) if not isinstance(data.liked, str) else data.liked == "Like"
            turn.feedback = "up" if liked else "down"
            comment = (comment or "").strip()
            append_feedback(self.settings.data_dir / "feedback.jsonl",
                            feedback_record(turn, liked, comment=comment))
            if getattr(turn, "audit_id", None):
                self.audit.feedback(turn.audit_id, turn.feedback, comment)
            return (f"Thanks: feedback ({turn.feedback}"
                    + (", with your comment" if comment else "") + ") saved.")
        except Exception as exc:
            log.exception("feedback failed")
            return error_message(exc)

    def export(self, turns: list[Any] | None, kind: str) -> str | None:
        """Write the conversation as Markdown or JSON and return the file path."""
        from advisor.conversation import export_json, export_markdown

        if not turns:
            return None
        self.prune_exports()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        # A folder per export: sessions exporting in the same second must not share a file.
        folder = Path(tempfile.mkdtemp(prefix="export-", dir=self.export_dir))
        if kind == "json":
            path = folder / f"advisor-conversation-{stamp}.json"
            path.write_text(export_json(turns, ruleset=self.catalog.ruleset), encoding="utf-8")
        else:
            path = folder / f"advisor-conversation-{stamp}.md"
            path.write_text(export_markdown(turns, ruleset=self.catalog.ruleset),
                            encoding="utf-8")
        return str(path)

    # -- deterministic tools ------------------------------------------------------------
    def lookup_records(self, text: str) -> list[dict[str, Any]]:
        """Lookup records for the codes typed (MalformedCode on a bad token)."""
        from advisor.tools import lookup_codes

        return lookup_codes(text, self.catalog)

    def lookup_view(self, text: str) -> tuple[str, Any]:
        """Lookup tab: HTML cards and the raw records."""
        from advisor.cards import lookup_html
        from advisor.ui import error_html, error_message

        try:
            records = self.lookup_records(text)
        except Exception as exc:
            return error_html(error_message(exc)), None
        return lookup_html(records), records

    def check_outcome(self, text: str) -> Any:
        """Check claim lines ('20610 76942', '93971-50', '37253x6')."""
        from advisor.tools import check_keyed

        return check_keyed(text, self.catalog)

    def check_view(self, text: str) -> tuple[str, Any]:
        """Claim-check tab: verdict, findings, fixes and the corrected claim; several lines
        are several claims, each checked on its own, with a summary."""
        from advisor.ui import claims_html, error_html, error_message, outcome_html, outcome_json

        try:
            if len([ln for ln in (text or "").splitlines() if ln.strip()]) > 1:
                from advisor.batch import results_json
                from advisor.tools import check_many

                results = check_many(text, self.catalog)
                return claims_html(results, self.catalog, self.sources), results_json(results)
            outcome = self.check_outcome(text)
        except Exception as exc:
            return error_html(error_message(exc)), None
        return outcome_html(outcome, self.catalog, self.sources), outcome_json(outcome)

    def audit_result(self, note: str, codes: str) -> Any:
        """Audit a note for the codes given (or the codes it names)."""
        from advisor.tools import audit

        return audit(note, codes, self.catalog)

    def audit_view(self, note: str, codes: str) -> str:
        """Note-audit tab: elements present or missing per code, complete versus limited."""
        from advisor.cards import audit_html
        from advisor.ui import error_html, error_message

        try:
            return audit_html(self.audit_result(note, codes))
        except Exception as exc:
            return error_html(error_message(exc))

    def suggest_codes(self, note: str) -> tuple[str, str]:
        """Codes to audit: those the note names, else the model's suggestion as the checker
        keeps it (advisor.suggest)."""
        from advisor.suggest import suggest_for_note
        from advisor.ui import codes_in_text, error_message

        if not (note or "").strip():
            return "", "Paste a note first."
        ready = str(self.settings.backend) != "none" and self.warmup.ready
        try:
            got = suggest_for_note(note, self.catalog, codes_in_text(note, self.catalog),
                                   self.advisor.ask if ready else None)
        except Exception as exc:
            log.exception("suggestion failed")
            return "", error_message(exc)
        return " ".join(got.codes), got.message

    # -- API (gradio_client) ------------------------------------------------------------
    @staticmethod
    def _api_error(exc: Exception) -> Exception:
        """A gr.Error with a readable message: shown to API callers even with show_error off."""
        import gradio as gr

        from advisor.ui import error_message

        if not isinstance(exc, ValueError):
            log.exception("API call failed")
        return gr.Error(error_message(exc), print_exception=False)

    def api_ask(self, question: str) -> dict[str, Any]:
        """Answer one question; the Answer as JSON (codes with verdicts, findings, citations)."""
        from advisor.limits import InputRejected, check_question

        try:
            question = check_question(question, self.settings)
        except InputRejected as exc:  # refused before waiting for the model
            raise self._api_error(exc) from exc
        self.warmup.wait(WAIT_FOR_MODEL_S)
        try:
            answer = self.advisor.ask(question)
        except Exception as exc:
            raise self._api_error(exc) from exc
        out = dict(answer.to_json())
        out["audit_id"] = self._record(answer)  # never fails the answer; None if not queued
        return out

    def api_check(self, claim: str) -> dict[str, Any]:
        """Check claim lines; verdicts, findings and the corrected claim as JSON. Several
        lines are several claims: {"claims": [one result a line], "summary": {...}}."""
        from advisor.ui import outcome_json

        try:
            if len([ln for ln in (claim or "").splitlines() if ln.strip()]) > 1:
                from advisor.batch import results_json
                from advisor.tools import check_many

                return results_json(check_many(claim, self.catalog))
            return outcome_json(self.check_outcome(claim))
        except Exception as exc:
            raise self._api_error(exc) from exc

    def api_lookup(self, codes: str) -> list[dict[str, Any]]:
        """Lookup records for the codes."""
        try:
            return self.lookup_records(codes)
        except Exception as exc:
            raise self._api_error(exc) from exc

    def api_audit(self, note: str, codes: str) -> dict[str, Any]:
        """Note audit as JSON."""
        try:
            return dict(self.audit_result(note, codes).to_dict())
        except Exception as exc:
            raise self._api_error(exc) from exc


def build_ui(state: AdvisorApp) -> gr.Blocks:
    """The Blocks layout with every event wired to ``state``'s handlers."""
    _quiet_environment()
    import gradio as gr

    from advisor.ui import (
        EXAMPLE_CLAIMS,
        EXAMPLE_NOTE,
        EXAMPLE_QUESTIONS,
        footer_markdown,
        question_counter,
    )

    settings = state.settings
    model_limit = MODEL_CONCURRENCY.get(str(settings.backend), 1)
    fast: dict[str, Any] = {"concurrency_limit": FAST_CONCURRENCY, "concurrency_id": "fast"}
    private: dict[str, Any] = {"api_visibility": "undocumented"}

    ttl = settings.export_ttl_s
    # Gradio keeps its own copy of every file it serves (exports, uploads): the same limit,
    # checked every ttl/4 at most every 10 minutes, and all of it removed at shutdown.
    with gr.Blocks(title="Ultrasound coding advisor", analytics_enabled=False,
                   delete_cache=(max(15, min(ttl // 4, 600)), ttl)) as demo:
        gr.Markdown("## Ultrasound CPT coding advisor\nEvery code shown is checked by "
                    "deterministic rules and carries a verdict: **verified**, **corrected**, "
                    "**removed** or **not verified**. Use de-identified text only.")
        status = gr.Markdown(state.status(), elem_id="model-status")
        timer = gr.Timer(2.0)

        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                chatbot = gr.Chatbot(label="Advisor", height=520, elem_id="chatbot",
                                     sanitize_html=False, render_markdown=False,
                                     buttons=["copy"])
                turns = gr.State([])
                with gr.Row():
                    # No max_length: the browser would cut a pasted question silently. The
                    # counter below says when it is too long, and the chat refuses it.
                    msg = gr.Textbox(label="Question", placeholder=EXAMPLE_QUESTIONS[0],
                                     scale=5, elem_id="question")
                    ask = gr.Button(ASK_IDLE, variant="primary", scale=1, elem_id="ask")
                counter = gr.Markdown(question_counter("", settings.max_question_chars),
                                      elem_id="question-count")
                gr.Examples([[q] for q in EXAMPLE_QUESTIONS], inputs=[msg],
                            label="Example questions (click one, then Ask)")
                with gr.Row():
                    clear = gr.Button("New conversation", size="sm")
                    export_md = gr.Button("Export Markdown", size="sm", elem_id="export-md")
                    export_js = gr.Button("Export JSON", size="sm", elem_id="export-json")
                export_file = gr.File(label="Export", interactive=False, elem_id="export-file",
                                      visible=False)
                feedback_comment = gr.Textbox(
                    label="Comment on an answer (optional)", lines=1, max_lines=4,
                    elem_id="feedback-comment",
                    placeholder="What was right or wrong? Type it, then rate the answer with "
                                "the thumbs on it.")
                feedback_msg = gr.Markdown(elem_id="feedback-msg")

            with gr.Tab("Lookup", id="lookup"):
                lk_in = gr.Textbox(label="Codes", placeholder="76937 20611 76942",
                                   elem_id="lookup-codes")
                lk_btn = gr.Button("Look up", variant="primary", elem_id="lookup-go")
                gr.Examples([["76937"], ["20611 76942"], ["93970 93971"]], inputs=[lk_in])
                lk_out = gr.HTML(elem_id="lookup-out")
                with gr.Accordion("JSON", open=False):
                    lk_json = gr.JSON()

            with gr.Tab("Claim check", id="check"):
                ck_in = gr.Textbox(label="Claim lines (CODE[-MOD][xUNITS]); one claim a line",
                                   placeholder="20610 76942", elem_id="claim", lines=2,
                                   max_lines=20)
                ck_btn = gr.Button("Check claim", variant="primary", elem_id="check-go")
                gr.Examples([[c] for c in EXAMPLE_CLAIMS], inputs=[ck_in])
                ck_out = gr.HTML(elem_id="check-out")
                with gr.Accordion("JSON", open=False):
                    ck_json = gr.JSON()

            with gr.Tab("Note audit", id="audit"):
                gr.Markdown("Paste a **de-identified** procedure or point-of-care note. Which "
                            "elements are present is decided by rules, never by the model.")
                au_note = gr.Textbox(label="Note", lines=10, elem_id="audit-note",
                                     max_length=20000)
                with gr.Row():
                    au_codes = gr.Textbox(label="Codes to audit", placeholder="76937",
                                          elem_id="audit-codes", scale=4)
                    au_suggest = gr.Button("Suggest codes", scale=1, elem_id="audit-suggest")
                au_hint = gr.Markdown()
                au_btn = gr.Button("Audit note", variant="primary", elem_id="audit-go")
                gr.Examples([[EXAMPLE_NOTE, "76937"]], inputs=[au_note, au_codes])
                au_out = gr.HTML(elem_id="audit-out")

            with gr.Tab("Settings", id="settings"):
                st_md = gr.Markdown(elem_id="settings-table")
                st_refresh = gr.Button("Refresh status", size="sm")
                with gr.Accordion("Model status (raw)", open=False):
                    st_json = gr.JSON()

        gr.Markdown(footer_markdown(state.catalog), elem_id="footer")

        # Chat: streamed, limited to what the model backend can run at once.
        def chat_fn(message: Any, chat: Any, turns_: Any, request: Any) -> Iterator[Any]:
            if not (message or "").strip():
                gr.Warning("Type a question first, e.g. \"" + EXAMPLE_QUESTIONS[0] + "\", or "
                           "codes to check, e.g. 20610 76942.")
            for chat_, turns__, box in state.chat(message, chat, turns_, request):
                # None: leave the box as the person is typing it (never wipe a next question).
                yield chat_, turns__, gr.skip() if box is None else box

        # The session (for the per-session rate limit) comes from gr.Request, injected by
        # the annotation object as for LikeData below.
        chat_fn.__annotations__["request"] = gr.Request
        chat_args: dict[str, Any] = {
            "fn": chat_fn, "inputs": [msg, chatbot, turns],
            "outputs": [chatbot, turns, msg], "concurrency_limit": model_limit,
            "concurrency_id": "model",
            # A question asked while one is answered is asked when that answer is done,
            # with the box as it is then (never dropped, never wiped).
            "trigger_mode": "always_last", **private,
        }
        # The Ask button says an answer is being made (and that asking again queues the
        # next question) until it is done; a finished answer opens at its top (the direct
        # answer and the codes), not at its bottom where the chat's own scrolling leaves it.
        for trigger, name in ((ask.click, "chat"), (msg.submit, "chat_submit")):
            trigger(lambda: gr.Button(value=ASK_BUSY), outputs=[ask], queue=False,
                    show_progress="hidden", **private)
            done = trigger(api_name=name, **chat_args).then(
                lambda: gr.Button(value=ASK_IDLE), outputs=[ask], queue=False,
                show_progress="hidden", **private)
            done.then(None, js=SCROLL_TO_ANSWER_JS)
        msg.change(lambda text: question_counter(text, settings.max_question_chars),
                   inputs=[msg], outputs=[counter], queue=False, show_progress="hidden",
                   trigger_mode="always_last", api_name="question_count", **private)
        clear.click(lambda: ([], [], gr.File(value=None, visible=False), ""),
                    outputs=[chatbot, turns, export_file, feedback_msg],
                    api_name="clear", **private)

        def exported(t: list[Any], kind: str) -> tuple[gr.File, str]:
            path = state.export(t, kind)
            if path is None:
                return gr.File(value=None, visible=False), "Nothing to export yet: ask first."
            return gr.File(value=path, visible=True), ""

        export_md.click(lambda t: exported(t, "md"), inputs=[turns],
                        outputs=[export_file, feedback_msg], api_name="export_markdown",
                        **private, **fast)
        export_js.click(lambda t: exported(t, "json"), inputs=[turns],
                        outputs=[export_file, feedback_msg], api_name="export_json",
                        **private, **fast)

        def on_like(chat: Any, turns_: Any, comment: Any, data: Any) -> tuple[str, Any]:
            said = state.feedback(chat, turns_, data, comment or "")
            # The comment went with this rating: the box is emptied for the next one.
            return said, "" if said.startswith("Thanks") else gr.skip()

        # Gradio injects LikeData by the annotation object, which postponed annotations hide.
        on_like.__annotations__["data"] = gr.LikeData
        chatbot.like(on_like, inputs=[chatbot, turns, feedback_comment],
                     outputs=[feedback_msg, feedback_comment],
                     api_name="feedback", **private, **fast)

        lk_btn.click(state.lookup_view, inputs=[lk_in], outputs=[lk_out, lk_json],
                     api_name="lookup_view", **private, **fast)
        lk_in.submit(state.lookup_view, inputs=[lk_in], outputs=[lk_out, lk_json],
                     api_name="lookup_submit", **private, **fast)
        ck_btn.click(state.check_view, inputs=[ck_in], outputs=[ck_out, ck_json],
                     api_name="check_view", **private, **fast)
        ck_in.submit(state.check_view, inputs=[ck_in], outputs=[ck_out, ck_json],
                     api_name="check_submit", **private, **fast)
        au_btn.click(state.audit_view, inputs=[au_note, au_codes], outputs=[au_out],
                     api_name="audit_view", **private, **fast)
        au_suggest.click(state.suggest_codes, inputs=[au_note], outputs=[au_codes, au_hint],
                         api_name="suggest_codes", **private, **fast)

        def tick() -> tuple[str, gr.Timer]:
            return state.status(), gr.Timer(active=not state.warmup.ready)

        timer.tick(tick, outputs=[status, timer], show_progress="hidden", api_name="status_tick",
                   **private, **fast)
        st_refresh.click(state.settings_view, outputs=[st_md, st_json], api_name="settings",
                         **private, **fast)
        demo.load(state.settings_view, outputs=[st_md, st_json], **private, **fast)

        # Plain JSON endpoints for gradio_client and scripts.
        gr.api(state.api_ask, api_name="ask", concurrency_limit=model_limit,
               concurrency_id="model")
        gr.api(state.api_check, api_name="check", **fast)
        gr.api(state.api_lookup, api_name="lookup", **fast)
        gr.api(state.api_audit, api_name="audit", **fast)

    demo.queue(default_concurrency_limit=model_limit, max_size=64)
    return demo


def serve(host: str | None = None, port: int | None = None, *, block: bool = True) -> Any:
    """Load settings, start the warm-up thread and launch the app."""
    _quiet_environment()
    from advisor.logging_setup import setup_logging
    from advisor.settings import load_settings

    setup_logging(logging.INFO)  # PHI masked in every record of the app's loggers
    exit_on_sigterm()
    settings = load_settings(host=host, port=port)
    state = AdvisorApp(settings)
    state.start_warmup()
    demo = build_ui(state)
    auth = None
    if settings.auth_user and settings.auth_password is not None:
        auth = (settings.auth_user, settings.auth_password.get_secret_value())
    log.info("serving on http://%s:%s (auth %s)", settings.host, settings.port,
             "on" if auth else "off")
    return demo.launch(
        server_name=settings.host,
        server_port=settings.port,
        auth=auth,
        share=False,
        show_error=False,
        prevent_thread_lock=not block,
        footer_links=["api", "settings"],
        max_file_size=f"{settings.max_upload_mb}mb",
        css=CSS,
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        quiet=False,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """``python app.py [--host H] [--port P]``."""
    parser = argparse.ArgumentParser(description="Ultrasound CPT coding advisor (web app).")
    parser.add_argument("--host", help="Bind address (default 127.0.0.1 from settings).")
    parser.add_argument("--port", type=int, help="Port (default 7860 from settings).")
    args = parser.parse_args(argv)
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
