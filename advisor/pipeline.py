"""The advisor's flow for one question: scrub, retrieve, draft, check, act on findings, answer.

The model drafts and is never trusted. Every code in an :class:`Answer` carries the verdict
of the deterministic checker. What each finding's ``OnFail`` asks for (fix, ask again once,
drop after the re-ask, warn) is the round policy in :mod:`guardrails.policy`; this module
calls it once per drafting round and does the asking.

Without a usable model the answer is deterministic: the retrieval candidates, each marked
"not verified", and a banner. Candidates are alternatives, not a claim, so they are not
checked together as one (20610 and 20611 side by side would only produce pair findings
about a claim nobody made); none is ever shown as verified.

The parts live beside this module: :mod:`advisor.answer` (the Answer types),
:mod:`advisor.scope` (code-only, follow-up and out-of-scope questions),
:mod:`advisor.drafting` (the model call and its reply read as a draft),
:mod:`advisor.streaming` (readable text while the model streams) and
:mod:`advisor.compose` (the Answer built from the checked rounds).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from advisor.answer import Answer, CitationRef, CodeLine, PathKind, Turn
from advisor.compose import Composer, claim_verdict, ms
from advisor.drafting import call_model, to_draft
from advisor.lookup import format_lookup
from advisor.lookup import lookup as lookup_record
from advisor.privacy import scrub
from advisor.prompts import (
    FITS,
    RULED_OUT,
    PromptContext,
    Task,
    draft_messages,
    reask_messages,
)
from advisor.scope import (
    claim_in_question,
    described_words,
    is_english,
    is_follow_up,
    names_codes,
    out_of_scope,
    parse_code_query,
    vocabulary,
)
from advisor.settings import Backend, Settings
from guardrails import check_claim, policy
from guardrails.claims import MalformedCode
from guardrails.fit import less_specific, misfits, outside, rank, supported
from guardrails.policy import Round, note
from guardrails.registry import RuleId
from guardrails.report import CodeStatus, Finding, Severity

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage

    from advisor.replies import ReplyCache
    from knowledge.catalog import Catalog

__all__ = [
    "Advisor",
    "Answer",
    "CitationRef",
    "CodeLine",
    "PathKind",
    "RetrieverLike",
    "Turn",
    "is_follow_up",
    "parse_code_query",
]

# Statuses of a code that passed the checks.
_PASSED = (CodeStatus.VERIFIED, CodeStatus.CORRECTED)

# The note beside a candidate in the draft prompt, by its fit score (guardrails.fit).
FIT_NOTE = {2: FITS, 1: "", 0: RULED_OUT}

log = logging.getLogger(__name__)

class RetrieverLike(Protocol):
    """The retriever interface the pipeline needs."""

    def search(self, query: str, k: int | None = None) -> Any:
        """Passages and candidates for a query (a RetrievalResult)."""


def _fitting(hints: Sequence[Finding]) -> list[str]:
    """The codes the checker named as fitting the question, each once, in order."""
    return list(dict.fromkeys(c for f in hints if f.fix for c in f.fix.alternatives))


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
        self.replies: ReplyCache | None = None  # model replies kept by prompt (eval --replay)
        self._model_error: str | None = None
        self._search_error: str | None = None
        self._vocab = vocabulary(catalog)
        self._described = described_words(catalog)
        self._compose = Composer(catalog)

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
            yield self._compose.plain(
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
        claim = claim_in_question(q, self._described)
        if claim is not None:
            # A question about the codes it names ("Can I bill 20610 and 76942 together?"):
            # the checker answers it as the claim it describes, with no model.
            last = turns[-1] if turns and is_follow_up(q) else None
            answer = self.lookup(
                claim.tokens, question=claim.context, history=last.question if last else "",
                asked=True,
            )
            ok = _PASSED
            # A question that describes the service and names codes none of which fit it
            # ("knee injection: is it 20612 with 76943?") asks which code is right: the
            # drafting flow finds it, and its prose flags the codes named.
            if not claim.context or any(c.status in ok for c in answer.codes):
                answer.question = q
                yield answer
                return
        if not is_english(q):
            msg = (
                "Only English is supported: please ask the question in English. Codes can be "
                "checked in any language (e.g. '20610 76942')."
            )
            f = note(RuleId.PIPELINE_LANGUAGE, Severity.INFO, (), msg)
            yield self._compose.plain(msg, "out_of_scope", started, findings=[f], question=q)
            return
        yield from self._ask_flow(q, turns, started)

    def lookup(
        self, codes: Sequence[str] | str, *, question: str = "", history: str = "",
        asked: bool = False,
    ) -> Answer:
        """Check codes as a claim ('20610 76942', '93971-50', '37253x6') with no model.

        ``question`` describes the service (read by the checker as for a draft); ``asked``
        puts the direct answer about the claim first.
        """
        started = time.perf_counter()
        tokens = parse_code_query(codes) if isinstance(codes, str) else list(codes)
        tokens = tokens or []
        t0 = time.perf_counter()
        try:
            outcome = check_claim(tokens, self.catalog, question=question, history=history)
        except MalformedCode as exc:
            f = note(RuleId.EXISTENCE_MALFORMED, Severity.ERROR, (), str(exc))
            return self._compose.plain(str(exc), "lookup", started, findings=[f])
        check_ms = ms(time.perf_counter() - t0)
        if not outcome.first.draft.codes:
            return self._compose.plain("No codes given.", "lookup", started)
        shown, removed = self._compose.code_tables(outcome)
        details = [
            format_lookup(lookup_record(c, self.catalog))
            for c in dict.fromkeys(ln.code for ln in outcome.first.draft.codes)
        ][:4]
        head = [claim_verdict(outcome)] if asked else []
        text = "\n\n".join([*head, self._compose.summary(shown, removed), *details])
        lead = head[0] if head else ""
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
                "total": ms(time.perf_counter() - started),
            },
            removed=removed,
            path="lookup",
            lead=lead,
            details=details,
        )

    # -- the drafting flow --------------------------------------------------------------
    def _retrieve(
        self, query: str
    ) -> tuple[list[Any], list[Any], str | None, str | None]:
        """Passages, active candidates, a failure banner and a notice.

        On a store failure: no passages, with a banner saying so. A search that worked with
        a caveat (a Chroma server unreachable, its local copy searched) carries a notice.
        """
        try:
            result = self.retriever.search(query, self.settings.retrieval_k)
            passages, candidates = list(result.passages), list(result.candidates)
        except Exception as exc:  # any store or embedding failure: answer without passages
            log.warning("retrieval failed: %s", exc)
            self._search_error = f"Guideline search failed: {exc}"
            banner = "The guideline search is unavailable right now; no passage was used."
            return [], [], banner, None
        active = [c for c in candidates if getattr(c, "active", True)]
        return passages, active, None, getattr(result, "notice", None)

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
        passages, candidates, banner, notice = self._retrieve(query)
        timings["retrieve"] = ms(time.perf_counter() - t0)

        history = last.question if follow_up and last else ""
        # A question the reading ties to a code of the ruleset (a CT-guided drainage whose code
        # includes any imaging guidance) is in scope, whatever modality words it uses; one
        # whose services no code describes, naming no ultrasound (a knee arthroscopy), is not,
        # whatever site words it shares with the codes.
        off_topic = out_of_scope(query if follow_up else q, self._vocab, candidates,
                                 banner is not None)
        if not off_topic and not names_codes(q):
            off_topic = outside(self.catalog, q, history)
        if off_topic and not supported(self.catalog, q, history):
            yield self._compose.out_of_scope(q, timings, started)
            return

        candidates = self._fitting(candidates, q, history)
        ctx = PromptContext(
            question=q, candidates=candidates, passages=passages, earlier=earlier,
            history=history,
        )
        if banner is not None:
            # Without candidates the model could only guess: answer deterministically.
            yield self._compose.fallback(
                q, ctx, "No candidate codes could be retrieved.", banner, timings, started,
                hint=self._search_error,
            )
            return
        banner = notice
        model = self.chat_model()
        if model is None:
            none = Backend(self.settings.backend) is Backend.NONE
            why = (
                "No language model is used here."
                if none else "The language model is unavailable right now."
            )
            hint = (
                "ADVISOR_BACKEND is 'none': set it to embedded, openai or ollama for drafted "
                "answers." if none else self._model_error
            )
            yield self._compose.fallback(
                q, ctx, why, banner, timings, started, model_error=self._model_error, hint=hint
            )
            return
        yield from self._draft_and_check(q, model, ctx, banner, timings, started)

    def _draft_and_check(
        self,
        q: str,
        model: BaseChatModel,
        ctx: PromptContext,
        banner: str | None,
        timings: dict[str, int],
        started: float,
    ) -> Generator[str | Answer, None, None]:
        """Draft, check (one checker call per drafting round), ask again once if the round
        policy says so, and compose the answer."""
        from advisor.llm import ModelError

        calls = 1
        t0 = time.perf_counter()
        try:
            raw = yield from self._call(model, Task.DRAFT, draft_messages(ctx), ctx)
        except ModelError as exc:
            timings["draft"] += ms(time.perf_counter() - t0)
            log.warning("draft failed: %s", exc)
            yield self._compose.fallback(
                q, ctx, "The language model is unavailable right now (it could not answer).",
                banner, timings, started, calls, model_error=f"{type(exc).__name__}: {exc}",
                hint=str(exc),
            )
            return
        timings["draft"] += ms(time.perf_counter() - t0)

        t0 = time.perf_counter()
        first = policy.first_round(to_draft(raw, ctx, self.catalog), self.catalog)
        timings["check"] += ms(time.perf_counter() - t0)
        rounds: Sequence[Round] = [first]
        extra: list[Finding] = []
        withhold_prose = False
        problems, fits = self._reask_plan(first, ctx)
        if problems:
            yield "\nchecking found problems; asking the model once more\n"
            extra.append(
                note(
                    RuleId.PIPELINE_REASKED,
                    Severity.INFO,
                    [c for f in first.ask_again for c in f.codes],
                    "The first draft failed " + "; ".join(problems) + " The model was asked once "
                    "more.",
                )
            )
            second = None
            t0 = time.perf_counter()
            try:
                calls += 1
                raw2 = yield from self._call(
                    model, Task.REASK,
                    reask_messages(ctx, raw, problems, fits), ctx
                )
                second = to_draft(raw2, ctx, self.catalog)
            except ModelError as exc:
                extra.append(
                    note(
                        RuleId.PIPELINE_REASK_FAILED,
                        Severity.WARNING,
                        (),
                        f"The second draft could not be obtained ({exc}); the first is used.",
                    )
                )
            timings["draft"] += ms(time.perf_counter() - t0)
            t0 = time.perf_counter()
            settled = policy.after_reask(first, second, self.catalog)
            timings["check"] += ms(time.perf_counter() - t0)
            rounds, withhold_prose = settled.rounds, settled.withhold_prose
            extra.extend(settled.notes)
        yield self._compose.compose(
            q, rounds, self.backend_label(), ctx, extra, withhold_prose, banner, timings,
            started, calls,
        )

    def _reask_plan(self, first: Round, ctx: PromptContext) -> tuple[list[str], list[str]]:
        """What the model is told when it is asked once more, and the codes named as
        fitting; no problems: no re-ask."""
        problems = [f"{'+'.join(f.codes) or 'text'}: {f.message}" for f in first.ask_again]
        fits = _fitting(first.hints)
        if not first.outcome.draft.codes and not problems:
            fits = self._unanswered(ctx)
            if fits:
                problems = ["text: the draft names no code, and the question describes a "
                            "service that candidates fit"]
        elif left := self._left_out(first, ctx):
            # A drafted code failed and the reading supports a candidate the draft left out
            # (the fluoroscopy guidance drafted, the ultrasound guidance the question names
            # not): the model is told once; the second draft is used only if more pass.
            fits = list(dict.fromkeys([*fits, *left]))
            problems.append(
                f"{'+'.join(left)}: the question describes a service the draft left out; "
                f"the checker found {', '.join(left)} fits it"
            )
        return problems, fits

    def _left_out(self, first: Round, ctx: PromptContext) -> list[str]:
        """Candidates the reading fully supports that the first draft left out, of the kind
        of a drafted code that failed (removed or not verified) and of a family no passing
        code answers: the guidance the question names beside a wrong guidance code. None
        when every drafted code passed."""
        def entries(passed: bool) -> list[Any]:
            return [e for v in first.outcome.verdicts
                    if (v.status in _PASSED) is passed and (e := self.catalog.get(v.code))]

        kinds = {e.kind for e in entries(False)}
        answered = {e.family for e in entries(True)}  # a service the draft already answers
        drafted = {c.code for c in first.draft.codes} | {c.code for c in first.outcome.draft.codes}
        return [c for c in self._unanswered(ctx) if c not in drafted
                and (e := self.catalog.get(c)) is not None and e.kind in kinds
                and e.family not in answered]

    def _unanswered(self, ctx: PromptContext) -> list[str]:
        """For a draft with no code: the candidates the question's reading fully supports
        (each fact the code needs affirmed, none contradicted), to name in the re-ask."""
        said = set(supported(self.catalog, ctx.question, ctx.history))
        return [c.code for c in ctx.candidates if c.code in said]

    def _call(
        self,
        model: BaseChatModel,
        task: Task,
        messages: list[BaseMessage],
        ctx: PromptContext | None = None,
    ) -> Generator[str, None, dict[str, Any]]:
        """One structured model call; streams readable text when the backend streams.

        With a reply cache (``replies``, set by ``advisor eval --replay``), a prompt already
        drafted is answered from it, and a new reply is kept.
        """
        key = None
        schema = None
        if self.replies is not None:
            from advisor.drafting import request_schema
            from advisor.prompts import TEMPLATES

            schema = request_schema(task, ctx)
            key = self.replies.key(str(task), messages, schema,
                                   min(self.settings.max_tokens, TEMPLATES[task].max_tokens))
            kept = self.replies.get(key)
            if kept is not None:
                return kept
        reply = yield from call_model(
            model, task, messages, ctx,
            timeout_s=self.settings.llm_timeout_s, max_tokens=self.settings.max_tokens,
            constrained=schema,
        )
        if key is not None and self.replies is not None:
            self.replies.put(key, reply)
        return reply

    def _fitting(self, candidates: list[Any], q: str, history: str) -> list[Any]:
        """Candidates ranked by how well they fit the question; nothing dropped.

        A small model picks among near codes, so the order matters: codes the question
        supports come first, then codes it says nothing against, then codes it contradicts
        (20610 when ultrasound guidance was used, 76801 at 20 weeks). Where the question
        contradicts a candidate, the codes that fit in its place are offered beside it. A
        contradicted candidate stays on the list, last: a reading that is wrong must not
        keep the right code from the model (the checker still rules on what is drafted).
        The few codes the reading alone supports are added when retrieval did not find them.
        """
        from advisor.retriever import Candidate

        offered: dict[str, Any] = {}
        for c in candidates:
            offered.setdefault(c.code, c)
            for f in misfits(self.catalog, c.code, q, history):
                fix = f.fix
                for code in (*fix.add, *fix.alternatives) if fix else ():
                    entry = self.catalog.get(code)
                    if code in offered or entry is None or not entry.active:
                        continue
                    offered[code] = Candidate(code=code, label=entry.label, score=c.score,
                                              why=f"fits the question in place of {c.code}")
                log.debug("candidate %s contradicted: %s", c.code, f.rule)
        # Codes the question's reading alone supports join the list when retrieval missed
        # them (a limited echo asked beside words about a pericardial procedure).
        top = max((c.score for c in candidates), default=0.0)
        for code in supported(self.catalog, q, history):
            entry = self.catalog.get(code)
            if code not in offered and entry is not None:
                offered[code] = Candidate(code=code, label=entry.label, score=top,
                                          why="fits what the question describes")
        # The fit rides to the prompt: a small model told which codes the question supports
        # and which it rules out picks among near codes better than from labels alone. A
        # code that fits but that another fitting code describes more exactly (the limited
        # abdomen beside liver elastography) is not marked as fitting, and follows it.
        vaguer = less_specific(self.catalog, q, history)
        ranked = sorted(rank(self.catalog, list(offered), q, history),
                        key=lambda cs: -(cs[1] + (cs[1] == 2 and cs[0] not in vaguer)))
        return [offered[c].model_copy(update={
                    "fit": FIT_NOTE[1 if c in vaguer and score == 2 else score]})
                for c, score in ranked]
