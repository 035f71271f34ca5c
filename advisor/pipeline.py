"""The advisor's flow for one question: scrub, retrieve, draft, check, act on findings, answer.

The model drafts and is never trusted. Every code in an :class:`Answer` carries the verdict
of the deterministic checker (``guardrails``); what each finding's ``OnFail`` asks for is
done here, in one place:

- FIX: applied by :func:`guardrails.repair.check_and_repair`;
- REASK: the model is asked once more with the findings; what still fails is dropped (a
  code) or withheld (the prose), with a ``pipeline.*`` finding saying why;
- DROP: the code is removed (by ``check_and_repair``), the finding stays;
- WARN: kept and shown.

Without a usable model the answer is deterministic: the retrieval candidates, each marked
"not verified", and a banner. Candidates are alternatives, not a claim, so they are not
checked together as one (20610 and 20611 side by side would only produce pair findings
about a claim nobody made); none is ever shown as verified.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Generator, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, Field

from advisor.lookup import format_lookup
from advisor.lookup import lookup as lookup_record
from advisor.privacy import scrub
from advisor.prompts import (
    TEMPLATES,
    PromptContext,
    Task,
    draft_messages,
    draft_schema,
    reask_messages,
)
from advisor.settings import Backend, Settings
from guardrails.claims import MalformedCode, parse_claim_lines
from guardrails.fit import misfits
from guardrails.repair import Outcome, check_and_repair
from guardrails.report import (
    CodeStatus,
    CodeVerdict,
    Draft,
    DraftCode,
    Finding,
    OnFail,
    Severity,
)

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage

    from knowledge.catalog import Catalog

log = logging.getLogger(__name__)

PathKind = Literal["draft", "fallback", "lookup", "out_of_scope", "empty"]

# ------------------------------------------------------------------------ answer types


class CodeLine(BaseModel):
    """One code of an answer with its verdict."""

    code: str = Field(description="The code.")
    status: CodeStatus = Field(description="verified, corrected, removed or not_verified.")
    label: str | None = Field(None, description="Catalog label; None for an unknown code.")
    units: int = Field(1, description="Units.")
    modifiers: list[str] = Field(default_factory=list, description="Modifiers.")
    findings: list[str] = Field(default_factory=list, description="Rule ids about this code.")
    reason: str = Field("", description="Why it is listed (model's reason or the fix).")


class CitationRef(BaseModel):
    """A retrieved passage the answer cited."""

    id: str = Field(description="Passage id (content hash).")
    source: str = Field(description="Document path or catalog:<code>.")
    title: str = Field(description="Document title.")
    section: str = Field(description="Section heading.")


class Turn(BaseModel):
    """An earlier question and the codes it ended with, for follow-up questions."""

    question: str = Field(description="The earlier question (already scrubbed).")
    codes: list[str] = Field(default_factory=list, description="Codes the answer showed.")
    statuses: list[str] = Field(default_factory=list, description="Their verdicts.")


class Answer(BaseModel):
    """What the advisor answers: text, checked codes, findings, citations, provenance."""

    answer: str = Field(description="Text for the person; agrees with `codes`.")
    codes: list[CodeLine] = Field(default_factory=list, description="Codes the answer shows.")
    findings: list[dict[str, Any]] = Field(
        default_factory=list, description="Findings, in the shape of Finding.to_dict()."
    )
    citations: list[CitationRef] = Field(
        default_factory=list, description="Retrieved passages the final codes cite."
    )
    ruleset: str = Field(description="Ruleset version used by the checker.")
    backend: str = Field(description="What drafted the answer: 'embedded:default', 'none', ...")
    timings_ms: dict[str, int] = Field(
        default_factory=dict, description="retrieve, draft, check, total in milliseconds."
    )
    banner: str | None = Field(None, description="Notice shown above the answer.")
    warned: list[str] = Field(default_factory=list, description="Codes the text warns against.")
    removed: list[CodeLine] = Field(
        default_factory=list, description="Codes drafted or claimed and removed, with why."
    )
    question: str = Field("", description="The question as processed (after scrubbing).")
    path: PathKind = Field("draft", description="Which path answered.")
    model_calls: int = Field(0, description="Model calls made for this answer.")
    draft_text: str = Field("", description="The model's prose, before flagging.")

    def to_json(self) -> dict[str, Any]:
        """JSON form: the stable keys first, then the extras."""
        data = self.model_dump(mode="json")
        head = ("answer", "codes", "findings", "citations", "ruleset", "backend", "timings_ms")
        return {k: data[k] for k in head} | {k: v for k, v in data.items() if k not in head}

    def turn(self) -> Turn:
        """This answer as history for a follow-up question."""
        return Turn(
            question=self.question,
            codes=[c.code for c in self.codes],
            statuses=[c.status.value for c in self.codes],
        )


class RetrieverLike(Protocol):
    """The retriever interface the pipeline needs."""

    def search(self, query: str, k: int | None = None) -> Any:
        """Passages and candidates for a query (a RetrievalResult)."""


# --------------------------------------------------------------------- question kinds

_VERB_RE = re.compile(r"^\s*(?:look\s*up|lookup|check|verify|scrub)\b\s*:?\s*", re.IGNORECASE)
_CLAIM_TOKEN_RE = re.compile(
    r"^(?:\+?(?:\d{5}|\d{4}[A-Za-z]|[A-Za-z]\d{4})(?:-[A-Za-z0-9]{2})*(?:[xX]\d+)?"
    r"|[xX]\d+|-[A-Za-z0-9]{2})$"
)
_SEPARATORS = frozenset({"+", "and", "&", "with", "plus"})
_MENTION_RE = re.compile(r"(?<![\w.])(\d{5}|\d{4}T|[A-Z]\d{4})(?![\w])")

_US_RE = re.compile(
    r"\b(?:ultrasound\w*|ultrasonograph\w*|sonograph\w*|sonogram\w*|us|usg|doppler|duplex|"
    r"echo\w*|tte|tee|ivus|pocus|fast|elastograph\w*|transvaginal|transrectal|"
    r"obstetric\w*|fetal)\b",
    re.IGNORECASE,
)
_OTHER_MODALITY_RE = re.compile(
    r"\b(?:mri|mra|magnetic\s+resonance|ct|cta|computed\s+tomography|cat\s+scan|x-?rays?|"
    r"radiograph\w*|pet|mammogra\w*|nuclear|spect|dexa|colonoscop\w*|endoscop\w*)\b",
    re.IGNORECASE,
)
# Image guidance of any modality: the ruleset holds the CT, fluoroscopic and MR guidance
# codes and the procedures that include them, so "CT-guided FNA" is in scope; "knee MRI" is not.
_GUIDANCE_RE = re.compile(r"\bguid(?:ed|ance|ing)\b|\bfluoro\w*", re.IGNORECASE)
_FOLLOW_UP_RE = re.compile(
    r"^\s*(?:and|also|what\s+about|how\s+about|what\s+if|if|same|but|or|then|plus|now)\b",
    re.IGNORECASE,
)
_WORD_RE = re.compile(r"[a-z]{4,}")
_GENERIC = frozenset(
    "with without each code codes bill billing billed report reported procedure service "
    "services first additional other than more include includes including when what which "
    "this that from into only same single level levels".split()
)


def parse_code_query(text: str) -> list[str] | None:
    """Claim tokens if the question is only codes ('20610 76942', 'check 93971-50'), else None."""
    rest = _VERB_RE.sub("", text, count=1)
    tokens = [t for t in re.split(r"[\s,;]+", rest.strip()) if t]
    tokens = [t for t in tokens if t.lower() not in _SEPARATORS]
    if not tokens or not all(_CLAIM_TOKEN_RE.match(t) for t in tokens):
        return None
    if not any(re.match(r"^\+?\w{5}", t) for t in tokens):
        return None
    return tokens


def _vocabulary(catalog: Catalog) -> frozenset[str]:
    words: set[str] = set()
    for entry in catalog.codes.values():
        words.update(_WORD_RE.findall(entry.label.lower()))
    for fam in catalog.families.values():
        words.update(_WORD_RE.findall(str(getattr(fam, "title", "")).lower()))
    return frozenset(words - _GENERIC)


def is_follow_up(question: str) -> bool:
    """A short or connective question that leans on the previous turn ('and if both legs?')."""
    return bool(_FOLLOW_UP_RE.match(question)) or len(question.split()) <= 5


# ------------------------------------------------------------------ stream rendering


class _DraftRenderer:
    """Turns the streamed JSON of a draft into readable text as it arrives.

    Shows each drafted code once its value is complete (marked as not yet checked) and the
    answer prose character by character; the JSON syntax itself is never shown.
    """

    _CODE_RE = re.compile(r'"code"\s*:\s*"([^"]*)"')
    _ANSWER_RE = re.compile(r'"answer"\s*:\s*"')

    def __init__(self) -> None:
        self.buf = ""
        self.codes_shown = 0
        self.answer_shown = 0

    def feed(self, text: str) -> str:
        self.buf += text
        out: list[str] = []
        codes = self._CODE_RE.findall(self.buf)
        for code in codes[self.codes_shown :]:
            out.append(f"drafting {code.strip() or '?'} (not yet checked)\n")
        self.codes_shown = len(codes)
        m = self._ANSWER_RE.search(self.buf)
        if m:
            prose = _partial_json_string(self.buf[m.end() :])
            if len(prose) > self.answer_shown:
                if self.answer_shown == 0:
                    out.append("\n")
                out.append(prose[self.answer_shown :])
                self.answer_shown = len(prose)
        return "".join(out)


_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "/": "/", "r": "", "b": "", "f": ""}


def _partial_json_string(s: str) -> str:
    """The decoded prefix of a JSON string body (stops at its closing quote)."""
    out: list[str] = []
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == '"':
            break
        if ch == "\\":
            if i + 1 >= len(s):
                break  # the escape is not complete yet
            nxt = s[i + 1]
            if nxt == "u":
                if i + 6 > len(s):
                    break
                try:
                    out.append(chr(int(s[i + 2 : i + 6], 16)))
                except ValueError:
                    pass
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


# ---------------------------------------------------------------------------- advisor


@dataclass
class _Round:
    """One drafted-and-checked round."""

    raw: dict[str, Any]
    draft: Draft
    outcome: Outcome


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _pipeline_finding(
    rule: str,
    severity: Severity,
    codes: Sequence[str],
    message: str,
    *,
    sources: Sequence[str] = (),
    on_fail: OnFail = OnFail.WARN,
) -> Finding:
    return Finding(rule, severity, tuple(codes), message, sources=tuple(sources), on_fail=on_fail)


def _dedupe(findings: Sequence[Finding]) -> list[Finding]:
    seen: dict[str, Finding] = {}
    for f in findings:
        seen.setdefault(json.dumps(f.to_dict(), sort_keys=True), f)
    return list(seen.values())


class Advisor:
    """Answers coding questions; build once and reuse (models and indexes load lazily)."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog | None = None,
        retriever: RetrieverLike | None = None,
        model: BaseChatModel | None = None,
    ) -> None:
        """Keep the settings; the catalog, retriever and chat model are built on first use."""
        self.settings = settings
        if catalog is None:
            from knowledge.catalog import load_catalog

            cms = settings.cms_dir if settings.cms_dir.exists() else None
            catalog = load_catalog(cms_dir=cms)
        self.catalog = catalog
        self._retriever = retriever
        self._model = model
        self._model_error: str | None = None
        self._vocab = _vocabulary(catalog)

    # -- components ---------------------------------------------------------------------
    @property
    def retriever(self) -> RetrieverLike:
        """The hybrid retriever (opened on first use)."""
        if self._retriever is None:
            from advisor.retriever import Retriever

            self._retriever = Retriever(self.settings, self.catalog)
        return self._retriever

    def chat_model(self) -> BaseChatModel | None:
        """The chat model, or None when the backend is 'none' or cannot be built."""
        if self._model is not None:
            return self._model
        if Backend(self.settings.backend) is Backend.NONE or self._model_error:
            return None
        from advisor.llm import ModelError, build_chat_model

        try:
            self._model = build_chat_model(self.settings)
        except ModelError as exc:
            self._model_error = str(exc)
            return None
        return self._model

    def backend_label(self) -> str:
        """Short name of the drafting backend: 'embedded:default', 'openai:<model>', ..."""
        s = self.settings
        backend = Backend(s.backend)
        if backend is Backend.EMBEDDED:
            return f"embedded:{s.model_path.name if s.model_path else s.model_preset}"
        if backend is Backend.OPENAI:
            return f"openai:{s.openai_model}"
        if backend is Backend.OLLAMA:
            return f"ollama:{s.ollama_model}"
        return "none"

    # -- public API ---------------------------------------------------------------------
    def ask(self, question: str, history: Sequence[Answer | Turn] = ()) -> Answer:
        """Answer a question (a follow-up when ``history`` holds earlier answers)."""
        final: Answer | None = None
        for item in self.stream(question, history):
            if isinstance(item, Answer):
                final = item
        assert final is not None
        return final

    def stream(
        self, question: str, history: Sequence[Answer | Turn] = ()
    ) -> Iterator[str | Answer]:
        """Yield text chunks while the model drafts, then the final checked Answer."""
        started = time.perf_counter()
        q = scrub(question).strip()[: self.settings.max_question_chars]
        turns = [h.turn() if isinstance(h, Answer) else h for h in history]
        turns = [
            Turn(question=scrub(t.question), codes=t.codes, statuses=t.statuses) for t in turns
        ]
        log.info("question: %s", q)
        if not q:
            yield self._plain(
                "Ask a coding question (e.g. 'US-guided knee injection') or give codes to "
                "check (e.g. '20610 76942').",
                "empty",
                started,
            )
            return
        tokens = parse_code_query(q)
        if tokens is not None:
            answer = self.lookup(tokens)
            answer.question = q
            yield answer
            return
        yield from self._ask_flow(q, turns, started)

    def lookup(self, codes: Sequence[str] | str) -> Answer:
        """Check codes as a claim ('20610 76942', '93971-50', '37253x6') with no model."""
        started = time.perf_counter()
        tokens = parse_code_query(codes) if isinstance(codes, str) else list(codes)
        tokens = tokens or []
        try:
            lines = parse_claim_lines(tokens)
        except MalformedCode as exc:
            f = _pipeline_finding("existence.malformed", Severity.ERROR, (), str(exc))
            return self._plain(str(exc), "lookup", started, findings=[f])
        if not lines:
            return self._plain("No codes given.", "lookup", started)
        draft = Draft(
            codes=tuple(
                DraftCode(ln.code, ln.units, ln.modifiers, add_on_mark=ln.add_on_mark)
                for ln in lines
            )
        )
        t0 = time.perf_counter()
        outcome = check_and_repair(draft, self.catalog)
        check_ms = _ms(time.perf_counter() - t0)
        shown, removed = self._code_tables(outcome)
        details = [
            format_lookup(lookup_record(c, self.catalog))
            for c in dict.fromkeys(ln.code for ln in lines)
        ][:4]
        text = self._summary(shown, removed) + "\n\n" + "\n\n".join(details)
        return Answer(
            answer=text,
            codes=shown,
            findings=[f.to_dict() for f in outcome.findings],
            ruleset=self.catalog.ruleset,
            backend="none",
            timings_ms={
                "retrieve": 0,
                "draft": 0,
                "check": check_ms,
                "total": _ms(time.perf_counter() - started),
            },
            removed=removed,
            path="lookup",
        )

    # -- the drafting flow --------------------------------------------------------------
    def _ask_flow(
        self, q: str, turns: list[Turn], started: float
    ) -> Generator[str | Answer, None, None]:
        timings = {"retrieve": 0, "draft": 0, "check": 0, "total": 0}
        last = turns[-1] if turns else None
        follow_up = last is not None and is_follow_up(q)
        query = f"{last.question} {q} {' '.join(last.codes)}" if follow_up and last else q
        earlier = ""
        if last is not None:
            done = ", ".join(f"{c} ({s})" for c, s in zip(last.codes, last.statuses, strict=False))
            earlier = f"Q: {last.question} -> codes: {done or 'none'}"

        t0 = time.perf_counter()
        banner: str | None = None
        try:
            result = self.retriever.search(query, self.settings.retrieval_k)
            passages, candidates = list(result.passages), list(result.candidates)
        except Exception as exc:  # any store or embedding failure: answer without passages
            log.warning("retrieval failed: %s", exc)
            banner = f"Guideline search is unavailable ({exc}); no passages were used."
            passages, candidates = [], []
        timings["retrieve"] = _ms(time.perf_counter() - t0)
        candidates = [c for c in candidates if getattr(c, "active", True)]

        if self._out_of_scope(query if follow_up else q, candidates, banner is not None):
            yield self._out_of_scope_answer(q, timings, started)
            return

        history = last.question if follow_up and last else ""
        candidates = self._fitting(candidates, q, history)
        ctx = PromptContext(
            question=q, candidates=candidates, passages=passages, earlier=earlier,
            history=history,
        )
        if banner is not None:
            # Without candidates the model could only guess: answer deterministically.
            yield self._fallback(
                q, ctx, "No candidate codes could be retrieved.", banner, timings, started
            )
            return
        model = self.chat_model()
        if model is None:
            why = (
                "The model is not used (backend 'none')."
                if Backend(self.settings.backend) is Backend.NONE
                else f"The model was unavailable: {self._model_error}"
            )
            yield self._fallback(q, ctx, why, banner, timings, started)
            return

        from advisor.llm import ModelError

        calls = 0
        try:
            t0 = time.perf_counter()
            calls += 1
            raw = yield from self._call(model, Task.DRAFT, draft_messages(ctx), ctx)
            timings["draft"] += _ms(time.perf_counter() - t0)
        except ModelError as exc:
            timings["draft"] += _ms(time.perf_counter() - t0)
            log.warning("draft failed: %s", exc)
            yield self._fallback(
                q, ctx, f"The model was unavailable: {exc}", banner, timings, started, calls
            )
            return

        t0 = time.perf_counter()
        first = self._round(raw, ctx)
        timings["check"] += _ms(time.perf_counter() - t0)
        rounds = [first]
        extra: list[Finding] = []
        reasks = self._reask_findings(first)
        withhold_prose = False
        if reasks:
            problems = [f"{'+'.join(f.codes) or 'text'}: {f.message}" for f in reasks]
            yield "\nchecking found problems; asking the model once more\n"
            extra.append(
                _pipeline_finding(
                    "pipeline.reasked",
                    Severity.INFO,
                    [c for f in reasks for c in f.codes],
                    "The first draft failed " + "; ".join(problems) + " The model was asked once "
                    "more.",
                )
            )
            second: _Round | None = None
            try:
                t0 = time.perf_counter()
                calls += 1
                raw2 = yield from self._call(
                    model, Task.REASK, reask_messages(ctx, raw, problems), ctx
                )
                timings["draft"] += _ms(time.perf_counter() - t0)
                t0 = time.perf_counter()
                second = self._round(raw2, ctx)
                timings["check"] += _ms(time.perf_counter() - t0)
            except ModelError as exc:
                timings["draft"] += _ms(time.perf_counter() - t0)
                extra.append(
                    _pipeline_finding(
                        "pipeline.reask_failed",
                        Severity.WARNING,
                        (),
                        f"The second draft could not be obtained ({exc}); the first is used.",
                    )
                )
            if second is not None and self._passing(second) < self._passing(first):
                # The re-asked draft lost codes that passed (a small model told about one
                # wrong statement may answer "no codes fit"): the first draft stays.
                extra.append(
                    _pipeline_finding(
                        "pipeline.reask_discarded",
                        Severity.INFO,
                        (),
                        "The second draft had fewer codes that pass the checks than the "
                        "first; the first draft is used.",
                    )
                )
                second = None
            current = second or first
            if second is not None:
                rounds.append(second)
            t0 = time.perf_counter()
            current, dropped, withhold_prose = self._drop_still_failing(current, ctx)
            timings["check"] += _ms(time.perf_counter() - t0)
            extra.extend(dropped)
            rounds[-1] = current
        yield self._compose(q, rounds, ctx, extra, withhold_prose, banner, timings, started, calls)

    def _call(
        self,
        model: BaseChatModel,
        task: Task,
        messages: list[BaseMessage],
        ctx: PromptContext | None = None,
    ) -> Generator[str, None, dict[str, Any]]:
        """One structured model call; streams readable text when the backend streams."""
        from advisor.llm import (
            LlamaCppChatModel,
            ModelError,
            ModelUnavailable,
            parse_json_reply,
            structured_call,
        )

        tpl = TEMPLATES[task]
        # Every backend is asked for the schema narrowed to the candidates (constrained
        # decoding where the backend has it); replies are validated against the general
        # schema, so an off-list code from a backend that ignores the narrowing still reaches
        # the checker (and is dropped there with a finding).
        constrained = draft_schema(ctx) if task in (Task.DRAFT, Task.REASK) else tpl.schema
        schema = tpl.schema
        timeout = self.settings.llm_timeout_s
        log.info("model call: %s", task)
        if not isinstance(model, LlamaCppChatModel):
            return structured_call(
                model, messages, schema, timeout_s=timeout, request_schema=constrained
            )
        renderer = _DraftRenderer()
        parts: list[str] = []
        try:
            for chunk in model.stream(
                messages,
                response_format={"type": "json_object", "schema": constrained},
                timeout_s=timeout,
                max_tokens=min(self.settings.max_tokens, tpl.max_tokens),
            ):
                text = chunk.content if isinstance(chunk.content, str) else ""
                parts.append(text)
                shown = renderer.feed(text)
                if shown:
                    yield shown
        except ModelError:
            raise
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelUnavailable(f"The embedded model failed: {exc}") from exc
        if renderer.answer_shown:
            yield "\n"
        return parse_json_reply("".join(parts), schema)

    def _round(self, raw: dict[str, Any], ctx: PromptContext) -> _Round:
        draft = self._to_draft(raw, ctx)
        return _Round(raw, draft, check_and_repair(draft, self.catalog))

    def _fitting(self, candidates: list[Any], q: str, history: str) -> list[Any]:
        """Candidates the question's own words do not rule out, with the checker's fixes.

        A small model picks among near codes: one the checker would reject on the question
        alone (20610 when ultrasound guidance was used, an abdominal code for an echo, 76801
        at 20 weeks) is not offered; the code the rule names instead is, in its place. When
        nothing would be left, the list stays as retrieved (the checker still rules).
        """
        from advisor.retriever import Candidate

        out: dict[str, Any] = {}
        for c in candidates:
            found = misfits(self.catalog, c.code, q, history)
            if not found:
                out.setdefault(c.code, c)
                continue
            for f in found:
                for code in f.fix.add if f.fix else ():
                    entry = self.catalog.get(code)
                    if code in out or entry is None or not entry.active:
                        continue
                    if misfits(self.catalog, code, q, history):
                        continue
                    out[code] = Candidate(code=code, label=entry.label, score=c.score,
                                          why=f"fits the question in place of {c.code}")
            log.debug("candidate %s not offered: %s", c.code, [f.rule for f in found])
        return list(out.values()) or candidates

    @staticmethod
    def _to_draft(raw: dict[str, Any], ctx: PromptContext) -> Draft:
        lines: list[DraftCode] = []
        for item in raw.get("codes") or []:
            if not isinstance(item, dict):
                continue
            code = str(item.get("code", "")).strip().lstrip("+").upper()
            if not code:
                continue
            try:
                units = max(1, int(item.get("units") or 1))
            except (TypeError, ValueError):
                units = 1
            mods = tuple(
                dict.fromkeys(
                    str(m).strip().lstrip("-").upper()
                    for m in item.get("modifiers") or []
                    if str(m).strip().lstrip("-")
                )
            )
            cited = ctx.resolve([str(c) for c in item.get("citations") or []])
            lines.append(DraftCode(code, units, mods, str(item.get("reason", "")), cited))
        # The question goes along as context: the checker reads it for body sites only.
        return Draft(
            codes=tuple(lines), text=str(raw.get("answer", "")), context=ctx.question,
            history=ctx.history,
        )

    @staticmethod
    def _reask_findings(rnd: _Round) -> list[Finding]:
        """REASK findings that still apply: about a code still drafted, or about the prose."""
        present = {c.code for c in rnd.outcome.draft.codes}
        out = []
        for f in rnd.outcome.findings:
            if f.on_fail is not OnFail.REASK:
                continue
            if f.span is not None or present.intersection(f.codes):
                out.append(f)
        return _dedupe(out)

    def _passing(self, rnd: _Round) -> int:
        """How many of a round's codes end verified or corrected on their own (a wrong
        statement in the prose is withheld, not held against the codes)."""
        ok = (CodeStatus.VERIFIED, CodeStatus.CORRECTED)
        alone = check_and_repair(replace(rnd.draft, text=""), self.catalog)
        return sum(1 for v in alone.verdicts if v.status in ok)

    def _drop_still_failing(
        self, rnd: _Round, ctx: PromptContext
    ) -> tuple[_Round, list[Finding], bool]:
        """Drop codes (and withhold prose) that still fail after the one re-ask."""
        still = self._reask_findings(rnd)
        if not still:
            return rnd, [], False
        present = [c.code for c in rnd.outcome.draft.codes]
        drop: dict[str, Finding] = {}
        withhold = False
        for f in still:
            removable = f.fix.remove if f.fix and f.fix.remove else ()
            if f.span is not None and not removable:
                withhold = True  # a statement in the prose: no code to drop, so the prose goes
                continue
            gone = removable or f.codes
            for code in gone:
                if code in present:
                    drop.setdefault(code, f)
        notes = [
            _pipeline_finding(
                "pipeline.dropped_after_reask",
                Severity.ERROR,
                (code,),
                f"{code} was removed: after one re-ask the draft still failed {f.rule}: "
                f"{f.message}",
                sources=f.sources,
                on_fail=OnFail.DROP,
            )
            for code, f in drop.items()
        ]
        if withhold:
            notes.append(
                _pipeline_finding(
                    "pipeline.prose_withheld",
                    Severity.WARNING,
                    (),
                    "The model's explanation was withheld: after one re-ask it still made "
                    "statements the rules contradict (see the findings above).",
                )
            )
        kept = tuple(c for c in rnd.outcome.draft.codes if c.code not in drop)
        text = "" if withhold else rnd.draft.text
        outcome = check_and_repair(
            replace(rnd.draft, codes=kept, text=text), self.catalog
        )
        removed_lines = [c for c in rnd.draft.codes if c.code in drop]
        merged = Outcome(
            first=rnd.outcome.first,
            final=outcome.final,
            draft=outcome.draft,
            verdicts=tuple(
                CodeVerdict(c.code, CodeStatus.REMOVED, c.units, c.modifiers, (drop[c.code],))
                for c in removed_lines
            )
            + tuple(v for v in outcome.verdicts if v.code not in drop),
            findings=tuple(_dedupe(list(rnd.outcome.findings) + list(outcome.findings))),
        )
        return _Round(rnd.raw, rnd.draft, merged), notes, withhold

    # -- answers ------------------------------------------------------------------------
    def _out_of_scope(self, text: str, candidates: list[Any], retrieval_failed: bool) -> bool:
        """True when the question is not about ultrasound coding (so nothing is guessed)."""
        has_us = bool(_US_RE.search(text))
        if _OTHER_MODALITY_RE.search(text) and not has_us and not _GUIDANCE_RE.search(text):
            return True
        words = set(_WORD_RE.findall(text.lower()))
        if not has_us and not (words & self._vocab):
            return True
        return not candidates and not retrieval_failed

    def _out_of_scope_answer(self, q: str, timings: dict[str, int], started: float) -> Answer:
        msg = (
            "This question is outside what the advisor covers: it codes ultrasound services "
            "(diagnostic ultrasound, echocardiography, vascular duplex and ultrasound-guided "
            "procedures) and found no code in its ruleset that fits. No code is suggested; "
            "check the question, or use a reference for that service."
        )
        f = _pipeline_finding("pipeline.out_of_scope", Severity.INFO, (), msg)
        return self._plain(msg, "out_of_scope", started, findings=[f], timings=timings, question=q)

    def _fallback(
        self,
        q: str,
        ctx: PromptContext,
        why: str,
        banner: str | None,
        timings: dict[str, int],
        started: float,
        calls: int = 0,
    ) -> Answer:
        """Deterministic answer without a model: candidates for review, never verified."""
        codes = [
            CodeLine(
                code=c.code,
                status=CodeStatus.NOT_VERIFIED,
                label=c.label,
                findings=["pipeline.model_unavailable"],
                reason="candidate for your review (not checked as a claim)",
            )
            for c in ctx.candidates
        ]
        head = why + " Answer built from the guideline search and the ruleset only."
        lines = [
            "No model drafted this answer, so no code is recommended or verified.",
            "Candidate codes for your review (not verified):" if codes else "No candidate codes.",
        ]
        lines += [f"  {c.code}  NOT VERIFIED  {c.label}" for c in codes]
        lines.append("Use `advisor check CODE...` to check the codes you choose.")
        f = _pipeline_finding(
            "pipeline.model_unavailable",
            Severity.WARNING,
            [c.code for c in codes],
            why + " The listed codes are retrieval candidates, not recommendations.",
        )
        timings["total"] = _ms(time.perf_counter() - started)
        return Answer(
            answer="\n".join(lines),
            codes=codes,
            findings=[f.to_dict()],
            citations=[self._citation(p) for p in ctx.passages],
            ruleset=self.catalog.ruleset,
            backend="none",
            timings_ms=timings,
            banner=" ".join(b for b in (head, banner) if b),
            question=q,
            path="fallback",
            model_calls=calls,
        )

    def _plain(
        self,
        text: str,
        path: PathKind,
        started: float,
        *,
        findings: Sequence[Finding] = (),
        timings: dict[str, int] | None = None,
        question: str = "",
    ) -> Answer:
        timings = timings or {"retrieve": 0, "draft": 0, "check": 0, "total": 0}
        timings["total"] = _ms(time.perf_counter() - started)
        return Answer(
            answer=text,
            findings=[f.to_dict() for f in findings],
            ruleset=self.catalog.ruleset,
            backend="none",
            timings_ms=timings,
            path=path,
            question=question,
        )

    @staticmethod
    def _citation(p: Any) -> CitationRef:
        return CitationRef(id=p.id, source=p.source, title=p.title, section=p.section)

    def _code_tables(self, outcome: Outcome) -> tuple[list[CodeLine], list[CodeLine]]:
        reasons = {c.code: c.reason for c in outcome.first.draft.codes}
        reasons.update({c.code: c.reason for c in outcome.draft.codes if c.reason})
        shown: list[CodeLine] = []
        removed: list[CodeLine] = []
        for v in outcome.verdicts:
            entry = self.catalog.get(v.code)
            line = CodeLine(
                code=v.code,
                status=v.status,
                label=entry.label if entry else None,
                units=v.units,
                modifiers=list(v.modifiers),
                findings=list(dict.fromkeys(f.rule for f in v.findings)),
                reason=reasons.get(v.code, ""),
            )
            if v.status is CodeStatus.REMOVED:
                why = [f for f in v.findings if f.severity is not Severity.INFO]
                line.reason = why[0].message if why else "removed by the checker"
                removed.append(line)
            else:
                shown.append(line)
        return shown, removed

    @staticmethod
    def _summary(shown: list[CodeLine], removed: list[CodeLine]) -> str:
        badge = {
            CodeStatus.VERIFIED: "VERIFIED",
            CodeStatus.CORRECTED: "CORRECTED",
            CodeStatus.NOT_VERIFIED: "NOT VERIFIED",
            CodeStatus.REMOVED: "REMOVED",
        }
        out = []
        if shown:
            out.append("Codes (each checked against the ruleset):")
            for c in shown:
                mods = "".join(f"-{m}" for m in c.modifiers)
                units = f" x{c.units}" if c.units != 1 else ""
                label = c.label or "not in the ruleset"
                out.append(f"  {c.code}{mods}{units}  {badge[c.status]}  {label}")
                if c.reason:
                    out.append(f"      why: {c.reason}")
        else:
            out.append("No code passed the checks.")
        if removed:
            out.append("Removed:")
            out.extend(f"  {c.code}  REMOVED  {c.reason}" for c in removed)
        return "\n".join(out)

    @staticmethod
    def _flag_prose(
        prose: str,
        shown: list[CodeLine],
        removed: set[str],
        warned: set[str],
        ruled_out: AbstractSet[str] = frozenset(),
    ) -> str:
        status = {c.code: c.status for c in shown}

        def mark(m: re.Match[str]) -> str:
            code = m.group(1)
            st = status.get(code)
            if st in (CodeStatus.VERIFIED, CodeStatus.CORRECTED):
                return code
            if st is CodeStatus.NOT_VERIFIED:
                return f"{code} [not verified]"
            if code in removed:
                return f"{code} [removed]"
            if code in ruled_out:
                return f"{code} [ruled out by the question]"
            if code in warned:
                return code
            return f"{code} [not checked]"

        return _MENTION_RE.sub(mark, prose)

    def _compose(
        self,
        q: str,
        rounds: list[_Round],
        ctx: PromptContext,
        extra: list[Finding],
        withhold_prose: bool,
        banner: str | None,
        timings: dict[str, int],
        started: float,
        calls: int,
    ) -> Answer:
        final = rounds[-1]
        outcome = final.outcome
        # A corrected code added by a fix rests on the passages its replaced codes cited.
        cites = {c.code: c.citations for c in final.draft.codes}
        inherited: dict[str, tuple[str, ...]] = {}
        for f in outcome.findings:
            if f.fix is not None and f.fix.add:
                from_removed = tuple(x for r in f.fix.remove for x in cites.get(r, ()))
                for added in f.fix.add:
                    inherited[added] = inherited.get(added, ()) + from_removed
        shown, removed = self._code_tables(outcome)
        removed_codes = {c.code for c in removed}
        # Codes of an earlier round that the re-asked draft no longer holds.
        for rnd in rounds[:-1]:
            for v in rnd.outcome.verdicts:
                if v.code in removed_codes or any(c.code == v.code for c in shown):
                    continue
                why = [f for f in v.findings if f.severity is not Severity.INFO]
                removed.append(
                    CodeLine(
                        code=v.code,
                        status=CodeStatus.REMOVED,
                        label=(e.label if (e := self.catalog.get(v.code)) else None),
                        units=v.units,
                        modifiers=list(v.modifiers),
                        findings=[f.rule for f in v.findings],
                        reason=(why[0].message if why else "not in the re-asked draft"),
                    )
                )
                removed_codes.add(v.code)
        cited: dict[str, None] = {}
        for line in outcome.draft.codes:
            for pid in line.citations + inherited.get(line.code, ()):
                cited.setdefault(pid, None)
        retrieved = {p.id: p for p in ctx.passages}
        citations = [self._citation(retrieved[pid]) for pid in cited if pid in retrieved]

        warned = set(outcome.first.warned)
        prose = "" if withhold_prose else final.draft.text.strip()
        parts = [self._summary(shown, removed)]
        if prose:
            # A code the prose names that the question's own words rule out (the model was
            # never offered it) is flagged as such, not as merely unchecked.
            listed = {c.code for c in shown} | removed_codes | warned
            ruled_out = {
                code
                for code in dict.fromkeys(_MENTION_RE.findall(prose))
                if code not in listed and misfits(self.catalog, code, ctx.question, ctx.history)
            }
            parts.append(
                "Explanation (drafted by the model; codes in it are flagged "
                "unless verified above):\n"
                + self._flag_prose(prose, shown, removed_codes, warned, ruled_out)
            )
        findings = _dedupe(list(outcome.findings) + extra)
        timings["total"] = _ms(time.perf_counter() - started)
        return Answer(
            answer="\n\n".join(parts),
            codes=shown,
            findings=[f.to_dict() for f in findings],
            citations=citations,
            ruleset=outcome.final.ruleset,
            backend=self.backend_label(),
            timings_ms=timings,
            banner=banner,
            warned=sorted(warned),
            removed=removed,
            question=q,
            path="draft",
            model_calls=calls,
            draft_text=final.draft.text,
        )
