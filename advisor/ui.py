"""Thin helpers behind the Gradio app: HTML rendering of answers, claim
checks, lookups and note audits.

Conversations (turns, exports, feedback) are :mod:`advisor.conversation`; the lookup and
note-audit cards :mod:`advisor.cards`; start-up (lazy
retriever, warm-up, status line) is :mod:`advisor.warmup`.
Nothing here imports gradio, so every function is testable with hand-built objects. All
text that came from a person, a document or the model is HTML-escaped before it is shown.
"""
from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from guardrails.audit import ElementStatus
from guardrails.repair import Outcome
from guardrails.report import CodeStatus, Severity
from knowledge.codes import mentions

if TYPE_CHECKING:
    from advisor.settings import Settings
    from knowledge.catalog import Catalog

log = logging.getLogger(__name__)


# (label shown, css class) per verdict; the css lives in app.py.
BADGES: dict[str, tuple[str, str]] = {
    CodeStatus.VERIFIED.value: ("verified", "badge-verified"),
    CodeStatus.CORRECTED.value: ("corrected", "badge-corrected"),
    CodeStatus.REMOVED.value: ("removed", "badge-removed"),
    CodeStatus.NOT_VERIFIED.value: ("not verified", "badge-unverified"),
}
SEVERITY_BADGES: dict[str, tuple[str, str]] = {
    Severity.ERROR.value: ("error", "badge-removed"),
    Severity.WARNING.value: ("warning", "badge-corrected"),
    Severity.INFO.value: ("info", "badge-info"),
}
ELEMENT_BADGES: dict[str, tuple[str, str]] = {
    ElementStatus.PRESENT.value: ("present", "badge-verified"),
    ElementStatus.MISSING.value: ("missing", "badge-removed"),
    ElementStatus.NEGATED.value: ("stated not done", "badge-removed"),
}
VERDICT_BADGES: dict[str, tuple[str, str]] = {
    "pass": ("PASS", "badge-verified"),
    "review": ("REVIEW", "badge-corrected"),
    "fail": ("FAIL", "badge-removed"),
}

EXAMPLE_QUESTIONS: tuple[str, ...] = (
    "What do I bill for an ultrasound-guided knee injection?",
    "Central line in the right IJ with ultrasound guidance: which codes?",
    "Bilateral lower extremity venous duplex: complete or limited?",
    "Can I bill a point-of-care FAST exam in the ED?",
    "IVUS of three vessels during a venous stent: how many units of 37252/37253?",
)
EXAMPLE_CLAIMS: tuple[str, ...] = ("20610 76942", "93971-50", "36556 76937", "37252 37253x6")
EXAMPLE_NOTE = (
    "Procedure: right internal jugular central venous catheter.\n"
    "Potential access sites were evaluated with ultrasound.\n"
    "Under real-time ultrasound guidance the needle entry into the vein was visualized.\n"
    "An image was saved to PACS. Performed by Dr. Smith."
)



def esc(value: object) -> str:
    """HTML-escape any value (None -> empty)."""
    return "" if value is None else html.escape(str(value), quote=True)


def as_dict(obj: Any) -> dict[str, Any]:
    """JSON-able dict of an Answer (pydantic), an Outcome, a NoteAudit or a dict."""
    if isinstance(obj, dict):
        return obj
    to_json = getattr(obj, "to_json", None)
    if callable(to_json):
        data = to_json()
        return json.loads(data) if isinstance(data, str) else dict(data)
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        return dict(dump(mode="json"))
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    raise TypeError(f"cannot render a {type(obj).__name__}")


def _status_value(status: Any) -> str:
    return str(getattr(status, "value", status))


def badge_html(status: Any) -> str:
    """A coloured badge for a code verdict (verified / corrected / removed / not verified)."""
    value = _status_value(status)
    label, cls = BADGES.get(value, (value.replace("_", " "), "badge-unverified"))
    return f'<span class="badge {cls}">{esc(label)}</span>'


def _badge(table: Mapping[str, tuple[str, str]], value: Any) -> str:
    v = _status_value(value)
    label, cls = table.get(v, (v, "badge-info"))
    return f'<span class="badge {cls}">{esc(label)}</span>'


def _code_text(code: str, modifiers: Sequence[str] = (), units: int = 1) -> str:
    return code + "".join(f"-{m}" for m in modifiers) + (f" x{units}" if units != 1 else "")


def _rules(findings: Iterable[Any]) -> list[str]:
    """Rule ids of a code's findings (pipeline lines hold ids, verdicts hold Findings)."""
    out = []
    for f in findings:
        if isinstance(f, str):
            out.append(f)
        elif isinstance(f, Mapping):
            out.append(str(f.get("rule", "")))
        else:
            out.append(str(getattr(f, "rule", f)))
    return list(dict.fromkeys(r for r in out if r))


# Rule ids in plain words (the id itself is shown on hover).
RULE_WORDS: dict[str, str] = {
    "existence.unknown": "unknown code",
    "existence.deleted": "deleted code",
    "existence.malformed": "not a code",
    "existence.low_confidence": "weakly sourced",
    "descriptor.add_on": "add-on status misstated",
    "descriptor.age": "patient age",
    "descriptor.both_sides": "both sides",
    "descriptor.one_side": "one side",
    "descriptor.extent": "complete or limited misstated",
    "descriptor.extent_context": "complete or limited",
    "descriptor.guidance": "guidance misstated",
    "descriptor.guidance_addon": "guidance add-on",
    "descriptor.guidance_context": "guidance used",
    "descriptor.guidance_unsaid": "no imaging named",
    "descriptor.meaning": "code meaning misstated",
    "descriptor.not_ultrasound": "not ultrasound",
    "descriptor.off_topic": "not the service asked about",
    "descriptor.question": "ruled out by the question",
    "descriptor.question_lacks": "question lacks what it needs",
    "descriptor.site": "body site",
    "pairs.allowed_with_modifier": "pair allowed with a modifier",
    "pairs.bundled": "bundled pair",
    "pairs.complete_limited": "complete with limited",
    "pairs.guidance_included": "guidance already included",
    "pairs.guidance_not_separate": "guidance not separate",
    "pairs.modifier_required": "pair needs a modifier",
    "pairs.modifier_unsupported": "modifier cannot unbundle",
    "pairs.review": "pair needs review",
    "pairs.alternatives": "given as alternatives",
    "pairs.unfounded_warning": "pair warning unfounded",
    "add_on.no_primary": "add-on without its primary",
    "add_on.excluded_primary": "add-on with an excluded primary",
    "add_on.primary_in_question": "primary named in the question",
    "add_on.primary_not_verified": "primary not verified",
    "add_on.primary_unverified": "primary not verified",
    "units.over_limit": "over the unit limit",
    "units.no_limit": "no unit limit known",
    "units.uncounted": "units not counted in the question",
    "units.each_additional": "each additional unit",
    "units.both_sides": "both sides",
    "modifiers.bilateral": "bilateral modifier",
    "modifiers.side": "side modifier",
    "modifiers.reduced": "reduced-service modifier",
    "modifiers.pc_tc": "26/TC modifier",
    "modifiers.unasked": "modifier not asked for",
    "modifiers.distinct_unneeded": "distinct modifier not needed",
    "documentation.requirements": "documentation needed",
    "documentation.contradiction": "documentation contradicted",
    "omission.implied": "added: the question implies it",
    "omission.guidance": "added: the guidance the question names",
    "omission.count": "added: the question counts more than one",
    "omission.procedure": "added: the procedure the guidance goes with",
    "pipeline.model_unavailable": "no model",
    "pipeline.dropped_after_reask": "dropped after a second try",
    "pipeline.prose_withheld": "explanation withheld",
    "prose.contradicts_verdict": "statement withheld",
    "pipeline.reasked": "asked again",
    "pipeline.reask_failed": "second try failed",
    "pipeline.reask_discarded": "second try discarded",
    "pipeline.kept_passing": "kept from the first try",
    "pipeline.out_of_scope": "out of scope",
    "pipeline.language": "language",
}


def rule_words(rule: str) -> str:
    """A rule id in plain words ('pairs.bundled' -> 'bundled pair')."""
    words = RULE_WORDS.get(rule)
    if words:
        return words
    return rule.rsplit(".", 1)[-1].replace("_", " ")


def rule_html(rule: str) -> str:
    """A rule in plain words, its id on hover."""
    return f'<span class="rule" title="{esc(rule)}">{esc(rule_words(rule))}</span>'


def codes_table_html(codes: Sequence[Mapping[str, Any]], *, caption: str = "") -> str:
    """Codes as a table: code, what it is (with the reason it is listed), status, units,
    modifiers and the rules about it in words (ids on hover). Code numbers and headers never
    wrap."""
    if not codes:
        return '<p class="muted">No code to show.</p>'
    rows = []
    for c in codes:
        mods = ", ".join(c.get("modifiers") or []) or "-"
        rules = ", ".join(rule_html(r) for r in _rules(c.get("findings") or []))
        reason = c.get("reason") or ""
        rows.append(
            f'<tr data-code="{esc(c["code"])}" data-status="{esc(_status_value(c["status"]))}">'
            f'<td class="code">{esc(c["code"])}</td>'
            f"<td>{esc(c.get('label') or 'not in the ruleset')}"
            + (f'<div class="muted why">{esc(reason)}</div>' if reason else "")
            + f'</td><td class="status">{badge_html(c["status"])}</td>'
            f'<td class="num">{esc(c.get("units", 1))}</td><td class="code">{esc(mods)}</td>'
            f'<td class="muted">{rules}</td></tr>'
        )
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (
        f'<table class="codes">{cap}<thead><tr><th>Code</th><th>What it is</th>'
        "<th>Status</th><th>Units</th><th>Modifiers</th><th>Rules</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _fix_text(fix: Any) -> str:
    if not fix:
        return ""
    if isinstance(fix, Mapping):
        text = str(fix.get("description") or "")
        alts = fix.get("alternatives") or []
    else:
        text, alts = str(getattr(fix, "description", "")), list(getattr(fix, "alternatives", ()))
    if alts:
        text += f" (alternatives: {', '.join(alts)})"
    return text


def source_title(where: str) -> str:
    """A readable title for a source address: 'aapc.com: breast imaging coding changes in
    2015' for a web page, the reference itself for a document."""
    m = re.match(r"https?://(?:www\.)?([^/]+)/?(.*)$", where.strip())
    if not m:
        return where.strip()
    host, path = m.group(1), m.group(2)
    tail = [p for p in re.split(r"[/?#]", path) if p and not p.isdigit()]
    if not tail:
        return host
    words = re.sub(r"^\d+-", "", re.sub(r"\.\w{2,4}$", "", tail[-1]))
    return f"{host}: {' '.join(re.split(r'[-_+]+', words)).strip()}"


def source_link(key: str, source: Any = None) -> str:
    """One source as a link with a title (its address when it has one), the key on hover."""
    where = source if isinstance(source, str) else str(getattr(source, "where", "") or "")
    supports = "" if isinstance(source, str) else str(getattr(source, "supports", "") or "")
    hover = esc(f"{supports} [{key}]" if supports else key)
    title = esc(source_title(where) if where else key)
    if where.startswith(("http://", "https://")):
        return (f'<a class="source" href="{esc(where)}" title="{hover}" target="_blank" '
                f'rel="noopener noreferrer">{title}</a>')
    return f'<span class="source" title="{hover}">{title}</span>'


def findings_html(
    findings: Sequence[Any], *, sources: Mapping[str, Any] | None = None, show_info: bool = False
) -> str:
    """Findings with severity, the codes they concern, the rule in words, message, fix and
    sources (links with titles; ``sources`` maps a key to its Source or address).

    Informational findings are folded into a collapsed section unless ``show_info``.
    """
    items = [f if isinstance(f, Mapping) else f.to_dict() for f in findings]
    if not items:
        return '<p class="muted">No findings.</p>'
    main = [f for f in items if show_info or f.get("severity") != Severity.INFO.value]
    info = [f for f in items if f not in main]

    def item(f: Mapping[str, Any]) -> str:
        codes = " + ".join(f.get("codes") or []) or "text"
        fix = _fix_text(f.get("fix"))
        keys = list(dict.fromkeys(f.get("sources") or []))
        src = ", ".join(source_link(k, (sources or {}).get(k)) for k in keys)
        return (
            f'<li class="finding">{_badge(SEVERITY_BADGES, f.get("severity", "info"))} '
            f"<b>{esc(codes)}</b> {rule_html(str(f.get('rule', '')))}: "
            f"{esc(f.get('message', ''))}"
            + (f'<div class="fix">Fix: {esc(fix)}</div>' if fix else "")
            + (
                f'<div class="muted">Sources: {src}'
                f" (confidence {esc(f.get('confidence', ''))})</div>"
                if keys
                else ""
            )
            + "</li>"
        )

    out = f'<ul class="findings">{"".join(item(f) for f in main)}</ul>' if main else ""
    if info:
        out += (
            f"<details><summary>{len(info)} informational note(s)</summary>"
            f'<ul class="findings">{"".join(item(f) for f in info)}</ul></details>'
        )
    return out


def citations_html(
    citations: Sequence[Mapping[str, Any]], passages: Mapping[str, str] | None = None
) -> str:
    """Expandable citations: title and section as the summary, passage text and source inside."""
    if not citations:
        return ""
    parts = []
    for i, c in enumerate(citations, 1):
        text = c.get("text") or (passages or {}).get(str(c.get("id", "")), "")
        body = (
            f'<div class="passage">{esc(text)}</div>'
            if text
            else '<div class="muted">Passage text not available.</div>'
        )
        section = f" - {esc(c.get('section'))}" if c.get("section") else ""
        parts.append(
            f'<details class="citation"><summary>[{i}] {esc(c.get("title", ""))}{section}'
            f'</summary>{body}<div class="muted">Source: {esc(c.get("source", ""))}'
            f" · passage id {esc(c.get('id', ''))}</div></details>"
        )
    return f'<div class="citations"><b>Citations</b>{"".join(parts)}</div>'


def _timings(t: Mapping[str, Any]) -> str:
    if not t:
        return ""
    total = t.get("total")
    rest = ", ".join(f"{k} {v} ms" for k, v in t.items() if k != "total" and v)
    return f"{total} ms" + (f" ({rest})" if rest else "") if total is not None else rest


def answer_html(
    answer: Any, passages: Mapping[str, str] | None = None,
    sources: Mapping[str, Any] | None = None,
) -> str:
    """One chat answer, each thing said once, codes first.

    The direct answer (or the note on how it was made), then one table of the codes (those
    removed as rows with their status), the model's explanation (flagged, contradicting
    statements withheld), the findings, what the ruleset holds (folded), the citations and
    the ruleset line. The answer's plain text (for the terminal) repeats the table, so it is
    shown only for answers that have no table.
    """
    a = as_dict(answer)
    parts = ['<div class="answer">']
    if a.get("banner"):
        parts.append(f'<div class="banner">{esc(a["banner"])}</div>')
    said = {str(f.get("message", "")) for f in a.get("findings") or []}
    # A removed code's reason is the finding that removed it: said once, in the findings.
    rows = [
        {**r, "reason": "" if r.get("reason") in said else r.get("reason", "")}
        for r in list(a.get("codes") or []) + list(a.get("removed") or [])
    ]
    structured = bool(rows or a.get("lead") or a.get("explanation"))
    if not structured:
        parts.append(f'<div class="answer-text">{esc(a.get("answer", ""))}</div>')
    if a.get("lead"):
        parts.append(f'<p class="lead">{esc(a["lead"])}</p>')
    if rows:
        parts.append(codes_table_html(rows, caption="Codes"))
    elif structured:
        parts.append('<p class="muted">No code passed the checks.</p>')
    if a.get("explanation"):
        parts.append(
            '<div class="explanation"><b>Explanation</b> <span class="muted">(drafted by the '
            "model; codes in it are flagged unless verified above)</span>"
            f'<div class="answer-text">{esc(a["explanation"])}</div></div>'
        )
    if a.get("findings"):
        parts.append('<div class="findings-block"><b>Findings</b>'
                     + findings_html(a["findings"], sources=sources) + "</div>")
    details = a.get("details") or []
    if details:
        parts.append(
            "<details class=\"ruleset-facts\"><summary>What the ruleset holds about "
            + esc(", ".join(d.split(None, 1)[0] for d in details))
            + "</summary>"
            + "".join(f'<pre class="facts">{esc(d)}</pre>' for d in details)
            + "</details>"
        )
    parts.append(citations_html(a.get("citations") or [], passages))
    meta = [f"ruleset {esc(a.get('ruleset', ''))}", f"drafted by {esc(a.get('backend', ''))}"]
    if a.get("timings_ms"):
        meta.append(esc(_timings(a["timings_ms"])))
    parts.append(f'<div class="muted meta">{" · ".join(meta)}</div></div>')
    return "".join(parts)


def question_counter(text: str, limit: int) -> str:
    """The character count under the question box; over the limit it says so."""
    n = len((text or "").strip())
    if n > limit:
        return (f"**{n:,} / {limit:,} characters: too long.** Shorten it to the procedure and "
                "the codes in question (paste notes into the note audit); it will not be "
                "sent as it is.")
    return f"{n:,} / {limit:,} characters"


def drafting_html(text: str, elapsed_s: float, note: str | None = None) -> str:
    """The chat message while an answer is being made: how long it has taken, what the
    model has drafted so far (not yet checked), and that a next question can be typed."""
    head = note or "Drafting; nothing below is checked yet."
    return (
        f'<div class="answer drafting"><div class="banner">{esc(head)} '
        f'<span class="elapsed">{int(elapsed_s)} s</span></div>'
        f'<div class="answer-text">{esc(text)}</div>'
        '<div class="muted">You can type your next question now: it is asked when this '
        "answer is done.</div></div>"
    )


def error_html(message: str) -> str:
    """A readable error box (never a stack trace)."""
    return f'<div class="error-box">{esc(message)}</div>'


def error_message(exc: BaseException) -> str:
    """A person-readable message for an exception: its own message, plus what to do next."""
    text = str(exc).strip() or type(exc).__name__
    if getattr(exc, "retryable", False):
        return f"{text} This may work if you try again."
    if type(exc).__module__.startswith(("advisor", "guardrails", "knowledge")) or isinstance(
        exc, ValueError
    ):
        return text
    return (
        f"Something went wrong ({type(exc).__name__}: {text}). "
        "Lookups and claim checks still work; the server log has the details."
    )


# ------------------------------------------------------------------------- claim check


def outcome_html(
    outcome: Outcome, catalog: Catalog | None = None, sources: Mapping[str, Any] | None = None
) -> str:
    """A claim check: overall verdict, a verdict per code, findings with fixes, corrected claim."""
    data = outcome.to_dict()
    rows = [
        {
            "code": v.code,
            "status": v.status.value,
            "label": (e.label if catalog is not None and (e := catalog.get(v.code)) else None),
            "units": v.units,
            "modifiers": list(v.modifiers),
            "findings": [f.rule for f in v.findings],
        }
        for v in outcome.verdicts
    ]
    claim = outcome.corrected_claim()
    changed = outcome.claim_changed()
    fixed = (
        f'<div class="corrected">Corrected claim: <code>{esc(claim or "(nothing billable)")}'
        "</code></div>"
        if changed
        else f'<div class="corrected">Claim as keyed: <code>{esc(claim)}</code> (no change)</div>'
    )
    return (
        f'<div class="outcome"><div>Verdict: {_badge(VERDICT_BADGES, data["verdict"])} '
        f'<span class="muted">ruleset {esc(data["ruleset"])}</span></div>'
        f"{codes_table_html(rows)}{fixed}<b>Findings</b>"
        f"{findings_html(outcome.findings, sources=sources)}</div>"
    )


def claims_html(
    results: Sequence[Any], catalog: Catalog | None = None,
    sources: Mapping[str, str] | None = None,
) -> str:
    """Several claims (one a line of the claim box): a summary, then each claim's check
    under its line and what was keyed."""
    from advisor.batch import Summary

    summary = Summary()
    parts = []
    for r in results:
        summary.add(r)
        head = (f'<div class="claim-head"><b>Line {r.claim.line}</b>: '
                f"<code>{esc(r.claim.keyed or r.claim.text)}</code></div>")
        if r.outcome is None or r.verdict in ("error", "empty"):
            why = r.data.get("error") or r.data.get("message") or "Nothing was checked."
            body = error_html(str(why))
        else:
            body = outcome_html(r.outcome, catalog, sources)
        parts.append(f'<section class="claim" data-line="{r.claim.line}" '
                     f'data-verdict="{esc(r.verdict)}">{head}{body}</section>')
    return (f'<div class="claims"><div class="claims-summary">{esc(summary.text())}</div>'
            + "".join(parts) + "</div>")


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """The claim check as JSON, with the corrected claim (same shape as `advisor check --json`)."""
    return dict(outcome.to_dict())


def parse_code_list(text: str) -> list[str]:
    """Codes typed as '76937, 20611 +76942' (separators: spaces, commas, semicolons, '+')."""
    return [t for t in re.split(r"[\s,;]+", text.replace("+", " ").strip()) if t]


def codes_in_text(text: str, catalog: Catalog) -> list[str]:
    """Catalog codes mentioned in a note, in order (the deterministic code suggestion)."""
    return [c for c in mentions(text) if catalog.get(c) is not None]


# ---------------------------------------------------------------------- status, footer


def footer_markdown(catalog: Catalog) -> str:
    """Ruleset version and CMS quarter for the page footer."""
    cms = catalog.cms_quarter or "none imported (built-in rules only)"
    return (
        f"Ruleset **{catalog.ruleset}** (built-in release {catalog.release}, as of "
        f"{catalog.as_of.isoformat()}) · CMS quarter: **{cms}** · Every code shown is "
        "checked by deterministic rules; verify against the current code set."
    )


def settings_markdown(settings: Settings, status: Mapping[str, Any], warm: str) -> str:
    """Backend, model preset and model status for the Settings tab."""
    rows = [
        ("Backend", str(settings.backend)),
        ("Model preset", str(settings.model_preset)),
        ("Warm-up", warm),
    ]
    for key in (
        "model",
        "path",
        "exists",
        "verified",
        "loaded",
        "n_ctx",
        "n_threads",
        "base_url",
        "missing_parts",
    ):
        if key in status and status[key] not in (None, [], ""):
            rows.append((key.replace("_", " ").capitalize(), str(status[key])))
    rows.append(("Bind address", f"{settings.host}:{settings.port}"))
    rows.append(("Authentication", "on" if settings.auth_user else "off"))
    rows.append(("Data directory", str(settings.data_dir)))
    return "| Setting | Value |\n|---|---|\n" + "\n".join(
        f"| {k} | {v.replace('|', '/')} |" for k, v in rows
    )
