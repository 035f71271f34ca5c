"""The Answer built from a checked round: code tables, summary, flagged prose, citations.

Also the answers that need no draft: the deterministic fallback (retrieval candidates, each
"not verified"), out of scope, and plain messages.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

from advisor.answer import Answer, CitationRef, CodeLine, PathKind
from advisor.prompts import PromptContext
from guardrails import prose as prose_rules
from guardrails.fit import misfits
from guardrails.policy import Round, dedupe, note
from guardrails.registry import RuleId
from guardrails.repair import Outcome
from guardrails.report import CodeStatus, Finding, Severity
from knowledge.codes import mention_spans, mentions

if TYPE_CHECKING:
    from knowledge.catalog import Catalog

log = logging.getLogger(__name__)


def ms(seconds: float) -> int:
    """Seconds as whole milliseconds."""
    return round(seconds * 1000)


def _keyed(lines: Sequence[Any]) -> str:
    return " + ".join(
        c.code + "".join(f"-{m}" for m in c.modifiers) + (f" x{c.units}" if c.units != 1 else "")
        for c in lines
    )


def claim_verdict(outcome: Outcome) -> str:
    """The direct answer to a question about a claim: yes, no (with what to report instead),
    or not verified. Worded from the checker's verdict only, so it never disagrees with the
    code table."""
    asked = _keyed(outcome.first.draft.codes)
    one = len(outcome.first.draft.codes) == 1
    what = f"{asked} reported on its own" if one else f"{asked} as one claim"
    if outcome.claim_changed():
        final = _keyed(outcome.draft.codes)
        instead = f"Report {final} instead." if final else "Nothing billable remains."
        return f"No, not as asked: {what} does not pass the checks. {instead}"
    if outcome.to_dict()["verdict"] == "pass":
        return f"Yes: {what} passes every check."
    return (f"Not verified: {what} could not be confirmed by the rules; see the findings "
            "before billing.")


class Composer:
    """Builds Answers for one catalog."""

    def __init__(self, catalog: Catalog) -> None:
        """Keep the catalog (labels, ruleset)."""
        self.catalog = catalog

    def out_of_scope(self, q: str, timings: dict[str, int], started: float) -> Answer:
        msg = (
            "This question is outside what the advisor covers: it codes ultrasound services "
            "(diagnostic ultrasound, echocardiography, vascular duplex and ultrasound-guided "
            "procedures) and found no code in its ruleset that fits. No code is suggested; "
            "check the question, or use a reference for that service."
        )
        f = note(RuleId.PIPELINE_OUT_OF_SCOPE, Severity.INFO, (), msg)
        return self.plain(msg, "out_of_scope", started, findings=[f], timings=timings, question=q)

    def fallback(
        self,
        q: str,
        ctx: PromptContext,
        why: str,
        banner: str | None,
        timings: dict[str, int],
        started: float,
        calls: int = 0,
        model_error: str | None = None,
        hint: str | None = None,
    ) -> Answer:
        """Deterministic answer without a model: candidates for review, never verified.

        ``why`` and ``banner`` speak to the person asking (a clinician in the chat);
        ``hint`` is for the operator (a setting or a command: logged, printed by the CLI,
        never shown in the chat). ``model_error`` says why a model that was meant to draft
        did not ('ModelTimeout: ...'), so a scorer can tell a failure from a deliberate
        fallback.
        """
        if hint:
            log.warning("fallback answer (%s): %s", why, hint)
        # The candidates the question does not rule out (20610 when it says ultrasound
        # guided the needle): the prompt offers all, a person is shown what may fit.
        shown = [c for c in ctx.candidates
                 if not misfits(self.catalog, c.code, ctx.question, ctx.history)]
        codes = [
            CodeLine(
                code=c.code,
                status=CodeStatus.NOT_VERIFIED,
                label=c.label,
                findings=[RuleId.PIPELINE_MODEL_UNAVAILABLE],
                reason="candidate for your review (not checked as a claim)",
            )
            for c in (shown or ctx.candidates)
        ]
        head = why + (" The codes below come from the guideline search, not a drafted answer."
                      if codes else "")
        lines = [
            "No model drafted this answer, so no code is recommended or verified.",
            "Candidate codes for your review (not verified):" if codes else "No candidate codes.",
        ]
        lines += [f"  {c.code}  NOT VERIFIED  {c.label}" for c in codes]
        checking = ("To check the codes you choose, ask with the codes themselves "
                    "(e.g. '36556 76937').")
        lines.append(checking)
        f = note(
            RuleId.PIPELINE_MODEL_UNAVAILABLE,
            Severity.WARNING,
            [c.code for c in codes],
            why + " The listed codes are search results for your review, not recommendations.",
        )
        timings["total"] = ms(time.perf_counter() - started)
        return Answer(
            answer="\n".join(lines),
            codes=codes,
            findings=[f.to_dict()],
            citations=[self.citation(p) for p in ctx.passages],
            ruleset=self.catalog.ruleset,
            backend="none",
            timings_ms=timings,
            banner=" ".join(b for b in (head, banner) if b),
            question=q,
            path="fallback",
            model_calls=calls,
            model_error=model_error,
            hint=hint,
            lead=f"{lines[0]} {checking}",
        )

    def plain(
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
        timings["total"] = ms(time.perf_counter() - started)
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
    def citation(p: Any) -> CitationRef:
        return CitationRef(id=p.id, source=p.source, title=p.title, section=p.section,
                           text=p.text, source_keys=list(getattr(p, "source_keys", ())))

    def code_tables(self, outcome: Outcome) -> tuple[list[CodeLine], list[CodeLine]]:
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
    def summary(shown: list[CodeLine], removed: list[CodeLine]) -> str:
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
    def flag_prose(
        prose: str,
        shown: list[CodeLine],
        removed: set[str],
        warned: set[str],
        ruled_out: AbstractSet[str] = frozenset(),
        known: AbstractSet[str] | None = None,
    ) -> str:
        """Each code the prose names, marked with what the checked answer says of it.

        ``known`` holds the ruleset's codes: a code outside it is an "unknown code", not
        merely one left unchecked.
        """
        status = {c.code: c.status for c in shown}

        def mark(code: str) -> str:
            st = status.get(code)
            if st in (CodeStatus.VERIFIED, CodeStatus.CORRECTED) or (
                st is None and code not in removed and code not in ruled_out and code in warned
            ):
                return ""
            if st is CodeStatus.NOT_VERIFIED:
                return " [not verified]"
            if code in removed:
                return " [removed]"
            if code in ruled_out:
                return " [ruled out by the question]"
            if known is not None and code not in known:
                return " [unknown code]"
            return " [not checked]"

        out: list[str] = []
        pos = 0
        for code, _start, end in mention_spans(prose):
            out.append(prose[pos:end] + mark(code))
            pos = end
        return "".join(out) + prose[pos:]

    def _dropped_earlier(
        self, rounds: Sequence[Round], shown: list[CodeLine], removed: list[CodeLine]
    ) -> list[CodeLine]:
        """Codes of an earlier round that the re-asked draft no longer holds."""
        out: list[CodeLine] = []
        done = {c.code for c in removed} | {c.code for c in shown}
        for rnd in rounds[:-1]:
            for v in rnd.outcome.verdicts:
                if v.code in done:
                    continue
                why = [f for f in v.findings if f.severity is not Severity.INFO]
                reason = why[0].message if why else ""
                if v.status is not CodeStatus.REMOVED:
                    # nothing contradicted it: the model's second draft left it out
                    reason = ("left out of the model's second draft; nothing the question "
                              "says contradicts it" + (f" ({reason})" if reason else ""))
                out.append(
                    CodeLine(
                        code=v.code,
                        status=CodeStatus.REMOVED,
                        label=(e.label if (e := self.catalog.get(v.code)) else None),
                        units=v.units,
                        modifiers=list(v.modifiers),
                        findings=[f.rule for f in v.findings],
                        reason=reason or "not in the re-asked draft",
                    )
                )
                done.add(v.code)
        return out

    def _citations(self, final: Round, ctx: PromptContext) -> list[CitationRef]:
        """The retrieved passages the final codes cite, in the order first cited."""
        outcome = final.outcome
        # A corrected code added by a fix rests on the passages its replaced codes cited.
        cites = {c.code: c.citations for c in final.draft.codes}
        inherited: dict[str, tuple[str, ...]] = {}
        for f in outcome.findings:
            if f.fix is not None and f.fix.add:
                from_removed = tuple(x for r in f.fix.remove for x in cites.get(r, ()))
                for added in f.fix.add:
                    inherited[added] = inherited.get(added, ()) + from_removed
        cited: dict[str, None] = {}
        for line in outcome.draft.codes:
            for pid in line.citations + inherited.get(line.code, ()):
                cited.setdefault(pid, None)
        retrieved = {p.id: p for p in ctx.passages}
        return [self.citation(retrieved[pid]) for pid in cited if pid in retrieved]

    def compose(
        self,
        q: str,
        rounds: Sequence[Round],
        backend: str,
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
        shown, removed = self.code_tables(outcome)
        removed += self._dropped_earlier(rounds, shown, removed)
        removed_codes = {c.code for c in removed}
        citations = self._citations(final, ctx)

        warned = set(outcome.first.warned)
        prose = "" if withhold_prose else final.draft.text.strip()
        parts = [self.summary(shown, removed)]
        withheld: tuple[prose_rules.Contradiction, ...] = ()
        explanation = ""
        if prose:
            # A code the prose names that the question's own words rule out (the model was
            # never offered it) is flagged as such, not as merely unchecked.
            listed = {c.code for c in shown} | removed_codes | warned
            ruled_out = {
                code
                for code in mentions(prose)
                if code not in listed and misfits(self.catalog, code, ctx.question, ctx.history)
            }
            # A sentence that asserts what the checked codes contradict is withheld, the
            # same way every time (guardrails.prose); the rest is shown with its codes
            # flagged.
            statuses = {c.code: c.status for c in shown}
            statuses.update({c: CodeStatus.REMOVED for c in removed_codes})
            withheld = prose_rules.contradictions(prose, statuses, self.catalog, ruled_out)
            known = self.catalog.codes.keys()
            explanation = prose_rules.withhold(
                prose, withheld,
                lambda t: self.flag_prose(t, shown, removed_codes, warned, ruled_out, known),
            )
            parts.append(
                "Explanation (drafted by the model; codes in it are flagged "
                "unless verified above):\n" + explanation
            )
        findings = dedupe(list(outcome.findings) + extra + prose_rules.findings_for(withheld))
        timings["total"] = ms(time.perf_counter() - started)
        return Answer(
            answer="\n\n".join(parts),
            codes=shown,
            findings=[f.to_dict() for f in findings],
            citations=citations,
            ruleset=outcome.final.ruleset,
            backend=backend,
            timings_ms=timings,
            banner=banner,
            warned=sorted(warned),
            removed=removed,
            question=q,
            path="draft",
            model_calls=calls,
            draft_text=final.draft.text,
            explanation=explanation,
        )
