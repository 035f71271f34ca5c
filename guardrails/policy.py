"""The round policy: what is done about a drafted round's findings, read from each ``OnFail``.

A drafting round is one draft from the model, checked. Per finding:

- FIX: the deterministic fix is applied (:func:`guardrails.repair.check_and_repair`);
- DROP: the code is removed and the finding stays;
- WARN: kept and shown;
- REASK: the model is asked once more with the findings (:attr:`Round.reask` lists them);
  after that one re-ask, a code that still fails is dropped and a prose statement that
  still fails is withheld, each with a ``pipeline.*`` finding saying why.

The pipeline calls :func:`first_round` for the first draft and, when it asked again,
:func:`after_reask` once with the second draft (or None when the model could not give one):
one call into the checker per drafting round.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

from guardrails.registry import RuleId
from guardrails.repair import Outcome, check_and_repair
from guardrails.report import CodeStatus, CodeVerdict, Draft, Finding, OnFail, Severity
from knowledge.catalog import Catalog

_SHOWN_OK = (CodeStatus.VERIFIED, CodeStatus.CORRECTED)


@dataclass(frozen=True)
class Round:
    """One drafting round: the draft as drafted, its checked outcome, what to re-ask about."""

    draft: Draft
    outcome: Outcome
    reask: tuple[Finding, ...] = ()
    # not-verified codes for which the checker names codes that fit the question: the
    # model is told once (with the re-ask), and nothing is dropped for them
    hints: tuple[Finding, ...] = ()

    @property
    def ask_again(self) -> tuple[Finding, ...]:
        """What the model is told when it is asked once more: re-asks, then hints."""
        return tuple(dedupe(list(self.reask) + list(self.hints)))


@dataclass(frozen=True)
class Settled:
    """The rounds after the one re-ask, with what the policy did and why."""

    rounds: tuple[Round, ...]  # the last one is the answer; earlier ones for what it dropped
    notes: tuple[Finding, ...]  # pipeline.reask_discarded / dropped_after_reask / prose_withheld
    withhold_prose: bool


def dedupe(findings: Sequence[Finding]) -> list[Finding]:
    """Findings in order, each once (equal JSON forms are one finding)."""
    seen: dict[str, Finding] = {}
    for f in findings:
        seen.setdefault(json.dumps(f.to_dict(), sort_keys=True), f)
    return list(seen.values())


def note(
    rule: str,
    severity: Severity,
    codes: Sequence[str],
    message: str,
    *,
    sources: Sequence[str] = (),
    on_fail: OnFail = OnFail.WARN,
) -> Finding:
    """A finding about what the advisor itself did (asked again, dropped, withheld)."""
    return Finding(rule, severity, tuple(codes), message, sources=tuple(sources), on_fail=on_fail)


def _open_reasks(outcome: Outcome) -> tuple[Finding, ...]:
    """REASK findings that still apply: about the prose, or raised by the last check of the
    repaired codes about a code still drafted.

    A code finding that the repair settled (a pair whose other code a fix removed) is not
    open: counting it because it names a code still drafted would re-ask about it and then
    drop the code the repair kept (76706 for a screening question, once 76775 was removed).
    """
    present = {c.code for c in outcome.draft.codes}
    final = set(outcome.final.findings)
    out = [
        f
        for f in outcome.findings
        if f.on_fail is OnFail.REASK
        and (f.span is not None or (f in final and present.intersection(f.codes)))
    ]
    return tuple(dedupe(out))


def _hints(outcome: Outcome) -> tuple[Finding, ...]:
    """The question leaves a drafted code unsupported and the checker names codes that fit
    it, none of them drafted, or the code's pair with another drafted code holds that one
    back too: the model is told so once. The code is not dropped for it
    (unknown is not wrong); a second draft is used only if more of its codes pass."""
    present = {c.code for c in outcome.draft.codes}
    status = {v.code: v.status for v in outcome.verdicts}
    # codes held back by a pair rule with another drafted code
    paired = {c for f in outcome.final.findings if str(f.rule).startswith("pairs.")
              and len(set(f.codes) & present) > 1 for c in f.codes}
    return tuple(dedupe([
        f for f in outcome.final.findings
        if f.rule == RuleId.FIT_UNSUPPORTED
        and present.intersection(f.codes)
        and all(status.get(c) is CodeStatus.NOT_VERIFIED for c in f.codes)
        and (
            (f.fix is not None and f.fix.alternatives
             and not present.intersection(f.fix.alternatives))
            # a code the question does not support, whose pair with another drafted code
            # holds that code back too: the model is told once
            or bool(paired.intersection(f.codes))
        )
    ]))


def _round(draft: Draft, catalog: Catalog) -> Round:
    outcome = check_and_repair(draft, catalog)
    return Round(draft, outcome, _open_reasks(outcome), _hints(outcome))


def first_round(draft: Draft, catalog: Catalog) -> Round:
    """Check and repair the first draft; ``reask`` says whether to ask the model again."""
    return _round(draft, catalog)


def _passing(rnd: Round, catalog: Catalog) -> int:
    """How many of a round's codes end verified or corrected on their own (a wrong
    statement in the prose is withheld, not held against the codes)."""
    alone = check_and_repair(replace(rnd.draft, text=""), catalog)
    return sum(1 for v in alone.verdicts if v.status in _SHOWN_OK)


def after_reask(first: Round, second: Draft | None, catalog: Catalog) -> Settled:
    """The policy after the one re-ask: keep the better draft, drop what still fails.

    ``second`` is the re-asked draft, or None when the model could not give one (the first
    draft is then used). A second draft with fewer codes that pass than the first is
    discarded (a small model told about one wrong statement may answer "no codes fit").
    A second draft with codes that pass keeps the first draft's passing codes it left out
    (:func:`_keep_passing`), and is checked again as a whole.
    """
    notes: list[Finding] = []
    rounds = [first]
    if second is not None:
        later = _round(second, catalog)
        merged, kept = _keep_passing(first, second)
        # a second draft with codes of its own that pass, which lost one that passed before
        # (an empty "no codes fit" answer is a refusal, not a new list: nothing is merged)
        if kept and _passing(later, catalog) > 0:
            later = _round(merged, catalog)
            kept_note = note(
                RuleId.PIPELINE_KEPT_PASSING,
                Severity.INFO,
                kept,
                f"{', '.join(kept)} passed the checks in the first draft and the second "
                "draft left {0} out with no finding against {0}: kept, and checked again with "
                "the second draft's codes.".format("them" if len(kept) > 1 else "it"),
            )
        else:
            kept_note = None
        gained = _passing(later, catalog) - _passing(first, catalog)
        # asked for hints only (nothing failed), a second draft must do better to be used
        if gained < 0 or (gained == 0 and not first.reask):
            notes.append(
                note(
                    RuleId.PIPELINE_REASK_DISCARDED,
                    Severity.INFO,
                    (),
                    "The second draft had fewer codes that pass the checks than the "
                    "first (or, asked only with the codes that fit, no more); the first "
                    "draft is used.",
                )
            )
        else:
            rounds.append(later)
            if kept_note is not None:
                notes.append(kept_note)
    last, dropped, withhold = _drop_still_failing(rounds[-1], catalog)
    rounds[-1] = last
    return Settled(tuple(rounds), tuple(notes + dropped), withhold)


def _keep_passing(first: Round, second: Draft) -> tuple[Draft, tuple[str, ...]]:
    """The second draft with the first draft's passing codes it left out.

    Asked again about one code, a small model often answers with a new list and loses a code
    that passed (the trigger point injection, kept with the guidance only). A code is removed
    only for a finding against it, so such a code is added back; the whole draft is then
    checked again, and a pair or unit rule between old and new codes still applies.
    """
    now = {c.code for c in second.codes}
    passed = {v.code for v in first.outcome.verdicts if v.status in _SHOWN_OK}
    lines = tuple(c for c in first.outcome.draft.codes if c.code in passed and c.code not in now)
    if not lines:
        return second, ()
    return replace(second, codes=second.codes + lines), tuple(c.code for c in lines)


def _drop_still_failing(rnd: Round, catalog: Catalog) -> tuple[Round, list[Finding], bool]:
    """Drop codes (and withhold prose) that still fail after the one re-ask."""
    still = rnd.reask
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
        for code in removable or f.codes:
            if code in present:
                drop.setdefault(code, f)
    notes = [
        note(
            RuleId.PIPELINE_DROPPED_AFTER_REASK,
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
            note(
                RuleId.PIPELINE_PROSE_WITHHELD,
                Severity.WARNING,
                (),
                "The model's explanation was withheld: after one re-ask it still made "
                "statements the rules contradict (see the findings above).",
            )
        )
    kept = tuple(c for c in rnd.outcome.draft.codes if c.code not in drop)
    text = "" if withhold else rnd.draft.text
    outcome = check_and_repair(replace(rnd.draft, codes=kept, text=text), catalog)
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
        findings=tuple(dedupe(list(rnd.outcome.findings) + list(outcome.findings))),
    )
    return Round(rnd.draft, merged, rnd.reask), notes, withhold
