"""Concurrent chat sessions against a running app through gradio_client.

Used by tests/e2e/test_app_load.py and bench/bench_load.py. Every session is its own
gradio_client ``Client`` (its own Gradio session and conversation state) and asks
questions no other session asks:

- code-only questions ("lookup 76937", "93970"), each about a code no other session
  names: answered by the lookup/check path, deterministic, so the code table the app
  shows is compared with the one computed here in-process;
- for the first few sessions, one question about a body site no other session asks,
  answered by the model. Which codes a 0.5B model picks is not asserted here (the
  pipeline tests judge answers); that the answer is to this session's question is.

At the end each session exports its conversation (JSON). The export must hold exactly its
own questions, in order; each exported answer must be to that question (the question the
pipeline processed) and show the same code table as the chat did.
"""

from __future__ import annotations

import contextlib
import json
import re
import statistics
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# One body-site question per model session, each about a different site.
MODEL_QUESTIONS = [
    "What do I bill for an ultrasound-guided thyroid biopsy?",
    "Renal ultrasound of both kidneys and bladder for hydronephrosis, how is it billed?",
    "Duplex scan of the deep veins of both legs for DVT: which CPT code?",
    "Transthoracic echocardiogram, complete, with spectral and color Doppler: what code?",
    "Ultrasound-guided paracentesis of ascites: what do I bill?",
    "Ultrasound of the scrotum and testes for pain: which code?",
]
ROW_RE = re.compile(r'data-code="([^"]+)" data-status="([^"]+)"')


@dataclass(frozen=True)
class Step:
    """One question of a session and what its answer must show."""

    question: str
    kind: str  # "code" (lookup/check path) or "model"
    rows: tuple[tuple[str, str], ...] = ()  # code questions: (code, status) rows expected


@dataclass
class Result:
    """One answered (or failed) question."""

    session: int
    step: Step
    seconds: float
    html: str = ""
    error: str | None = None

    @property
    def rows(self) -> list[tuple[str, str]]:
        return ROW_RE.findall(self.html)


@dataclass
class SessionReport:
    """All of a session's results and the conversation it exported."""

    session: int
    results: list[Result] = field(default_factory=list)
    exported: list[dict[str, Any]] | None = None
    export_error: str | None = None


def _rows(answer: Any) -> tuple[tuple[str, str], ...]:
    data = answer.to_json()
    return tuple(
        (str(c["code"]), str(c["status"]))
        for c in list(data.get("codes") or []) + list(data.get("removed") or [])
    )


def plan(sessions: int, model_sessions: int, catalog: Any, data_dir: Path) -> list[list[Step]]:
    """The questions of every session, with expected code tables computed in-process."""
    from advisor.pipeline import Advisor
    from advisor.settings import Settings

    if model_sessions > len(MODEL_QUESTIONS):
        raise ValueError(f"at most {len(MODEL_QUESTIONS)} model sessions")
    codes = sorted(c for c, e in catalog.codes.items() if e.active)
    stride = max(1, len(codes) // (2 * sessions))
    picked = codes[::stride][: 2 * sessions]
    if len(picked) < 2 * sessions:
        raise ValueError(f"the catalog has too few codes for {sessions} sessions")
    local = Advisor(Settings(data_dir=data_dir, backend="none"), catalog)
    out: list[list[Step]] = []
    for i in range(sessions):
        steps = []
        if i < model_sessions:
            steps.append(Step(MODEL_QUESTIONS[i], "model"))
        for question in (f"lookup {picked[2 * i]}", picked[2 * i + 1]):
            steps.append(Step(question, "code", rows=_rows(local.ask(question))))
        out.append(steps)
    return out


def _answer_html(chat: list[dict[str, Any]]) -> str:
    content = chat[-1]["content"]
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content)


def run_session(
    url: str,
    session: int,
    steps: Sequence[Step],
    report: SessionReport,
    export_together: threading.Barrier | None = None,
) -> None:
    """Ask every step in order in one Gradio session, then export the conversation.

    With ``export_together`` the sessions wait for each other and export all at once.
    """
    from gradio_client import Client

    try:
        client = Client(url, verbose=False, download_files=False)
    except Exception as exc:
        report.export_error = f"no client: {exc!r}"
        if export_together is not None:
            export_together.abort()
        return
    chat: list[dict[str, Any]] = []
    for step in steps:
        started = time.perf_counter()
        try:
            chat, _box = client.predict(step.question, chat, api_name="/chat")
            html = _answer_html(chat)
            report.results.append(
                Result(session, step, time.perf_counter() - started, html=html)
            )
        except Exception as exc:  # recorded and asserted on by the caller
            report.results.append(
                Result(session, step, time.perf_counter() - started, error=repr(exc))
            )
    if export_together is not None:
        with contextlib.suppress(threading.BrokenBarrierError):
            export_together.wait()
    try:
        update, _msg = client.predict(api_name="/export_json")
        with urllib.request.urlopen(update["value"]["url"], timeout=30) as reply:
            report.exported = list(json.load(reply)["turns"])
    except Exception as exc:
        report.export_error = repr(exc)


def problems(
    reports: Sequence[SessionReport], masked: Callable[[str], str] | None = None
) -> list[str]:
    """Everything wrong with the sessions' answers and exports ([] when all is well).

    ``masked`` is the app's PHI masking, for questions holding patient details: the answer
    names the question as processed, masked.
    """
    mask = masked or (lambda text: text)
    out: list[str] = []
    for rep in reports:
        tag = f"session {rep.session}"
        for r in rep.results:
            where = f"{tag} {r.step.question!r}"
            if r.error:
                out.append(f"{where}: {r.error}")
                continue
            if "error-box" in r.html or "Traceback" in r.html:
                out.append(f"{where}: error shown: {r.html[:300]}")
            elif r.step.kind == "code" and tuple(r.rows) != r.step.rows:
                out.append(f"{where}: rows {r.rows} != expected {list(r.step.rows)}")
        if rep.export_error or rep.exported is None:
            out.append(f"{tag}: export failed: {rep.export_error}")
            continue
        asked = [r.step.question for r in rep.results if not r.error]
        got = [t.get("question") for t in rep.exported]
        if got != asked:
            out.append(f"{tag}: export holds questions {got}, asked {asked}")
            continue
        for r, turn in zip((r for r in rep.results if not r.error), rep.exported, strict=True):
            answer = turn.get("answer") or {}
            rows = [
                (str(c["code"]), str(c["status"]))
                for c in list(answer.get("codes") or []) + list(answer.get("removed") or [])
            ]
            where = f"{tag} {r.step.question!r}"
            if answer.get("question") not in (r.step.question, mask(r.step.question)):
                out.append(f"{where}: exported answer is to {answer.get('question')!r}")
            if rows != r.rows:
                out.append(f"{where}: exported rows {rows} != shown rows {r.rows}")
    return out


class RssSampler:
    """Samples a process's resident memory every ``interval_s`` in a thread; keeps the peak."""

    def __init__(self, pid: int, interval_s: float = 0.5) -> None:
        from helpers import rss_mb

        self._read = lambda: rss_mb(pid)
        self.interval_s = interval_s
        self.peak = self._read()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.peak = max(self.peak, self._read())
            except (OSError, RuntimeError):
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def run_load(
    url: str | Sequence[str], steps: Sequence[Sequence[Step]], deadline_s: float
) -> tuple[list[SessionReport], float]:
    """All sessions at once, one thread each; the reports and the wall time in seconds.

    With several URLs (app replicas), session i goes to ``url[i % len(url)]``. Sessions
    export their conversations at the same moment, once all have asked their questions. A
    session still running after ``deadline_s`` is reported as failed.
    """
    urls = [url] if isinstance(url, str) else list(url)
    reports = [SessionReport(i) for i in range(len(steps))]
    together = threading.Barrier(len(steps), timeout=deadline_s)
    threads = [
        threading.Thread(
            target=run_session, args=(urls[i % len(urls)], i, s, reports[i], together),
            daemon=True,
        )
        for i, s in enumerate(steps)
    ]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, deadline_s - (time.perf_counter() - started)))
    wall = time.perf_counter() - started
    for rep, t in zip(reports, threads, strict=True):
        if t.is_alive():
            rep.export_error = f"still running after {deadline_s:g} s"
    return reports, wall


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation; NaN when empty."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1])
