"""Thin helpers behind the Gradio app: HTML rendering, exports, feedback and model warm-up.

Nothing here imports gradio, so every function is testable with hand-built objects. All
text that came from a person, a document or the model is HTML-escaped before it is shown.
"""

from __future__ import annotations

import html
import json
import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardrails.audit import ElementStatus, NoteAudit, SetResult
from guardrails.repair import Outcome
from guardrails.report import CodeStatus, Severity

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

_CODE_TOKEN_RE = re.compile(r"(?<![\w.])\+?(\d{5}|\d{4}[Tt]|[A-Za-z]\d{4})(?![\w])")
_MAX_EXPORT_PASSAGE = 2000


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


def codes_table_html(codes: Sequence[Mapping[str, Any]], *, caption: str = "") -> str:
    """The recommended codes as a table: code, description, status badge, units, modifiers."""
    if not codes:
        return '<p class="muted">No code to show.</p>'
    rows = []
    for c in codes:
        mods = ", ".join(c.get("modifiers") or []) or "-"
        rules = ", ".join(_rules(c.get("findings") or [])) or ""
        reason = c.get("reason") or ""
        rows.append(
            f'<tr data-code="{esc(c["code"])}" data-status="{esc(_status_value(c["status"]))}">'
            f'<td class="code">{esc(c["code"])}</td>'
            f"<td>{esc(c.get('label') or 'not in the ruleset')}"
            + (f'<div class="muted">{esc(reason)}</div>' if reason else "")
            + f"</td><td>{badge_html(c['status'])}</td>"
            f"<td>{esc(c.get('units', 1))}</td><td>{esc(mods)}</td>"
            f'<td class="muted">{esc(rules)}</td></tr>'
        )
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (
        f'<table class="codes">{cap}<thead><tr><th>Code</th><th>Description</th>'
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


def findings_html(
    findings: Sequence[Any], *, sources: Mapping[str, str] | None = None, show_info: bool = False
) -> str:
    """Findings with severity, the codes they concern, message, fix and sources.

    ``sources`` maps a source key to where it can be read (shown as the link text's title).
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
        keys = f.get("sources") or []
        src = ", ".join(
            f'<span title="{esc((sources or {}).get(k, ""))}">{esc(k)}</span>' for k in keys
        )
        return (
            f'<li class="finding">{_badge(SEVERITY_BADGES, f.get("severity", "info"))} '
            f"<b>{esc(codes)}</b> <code>{esc(f.get('rule', ''))}</code>: "
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


def answer_html(answer: Any, passages: Mapping[str, str] | None = None) -> str:
    """One chat answer: banner, text, verified code table, removed codes, findings, citations."""
    a = as_dict(answer)
    parts = ['<div class="answer">']
    if a.get("banner"):
        parts.append(f'<div class="banner">{esc(a["banner"])}</div>')
    parts.append(f'<div class="answer-text">{esc(a.get("answer", ""))}</div>')
    parts.append(codes_table_html(a.get("codes") or [], caption="Codes"))
    if a.get("removed"):
        parts.append(codes_table_html(a["removed"], caption="Removed"))
    parts.append("<b>Findings</b>" + findings_html(a.get("findings") or []))
    parts.append(citations_html(a.get("citations") or [], passages))
    meta = [f"ruleset {esc(a.get('ruleset', ''))}", f"drafted by {esc(a.get('backend', ''))}"]
    if a.get("timings_ms"):
        meta.append(esc(_timings(a["timings_ms"])))
    parts.append(f'<div class="muted meta">{" · ".join(meta)}</div></div>')
    return "".join(parts)


def streaming_html(text: str, note: str = "Drafting; nothing below is checked yet.") -> str:
    """What the chat shows while the model is still drafting."""
    return (
        f'<div class="answer"><div class="banner">{esc(note)}</div>'
        f'<div class="answer-text">{esc(text)}</div></div>'
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


def corrected_claim(outcome: Outcome) -> str:
    """The claim after the checker's fixes, as a coder would key it."""
    return " ".join(
        c.code + "".join(f"-{m}" for m in c.modifiers) + (f"x{c.units}" if c.units != 1 else "")
        for c in outcome.draft.codes
    )


def claim_changed(outcome: Outcome) -> bool:
    """True when the fixes changed the claim."""
    before = [(c.code, c.units, c.modifiers) for c in outcome.first.draft.codes]
    after = [(c.code, c.units, c.modifiers) for c in outcome.draft.codes]
    return before != after


def outcome_html(
    outcome: Outcome, catalog: Catalog | None = None, sources: Mapping[str, str] | None = None
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
    claim = corrected_claim(outcome)
    changed = claim_changed(outcome)
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


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """The claim check as JSON, with the corrected claim (same shape as `advisor check --json`)."""
    data = outcome.to_dict()
    data["corrected_claim"] = [
        {"code": c.code, "units": c.units, "modifiers": list(c.modifiers)}
        for c in outcome.draft.codes
    ]
    data["corrected_claim_text"] = corrected_claim(outcome)
    return data


# ----------------------------------------------------------------------------- lookup


def _yes_no(value: Any) -> str:
    return {True: "yes", False: "no", None: "unknown"}.get(value, str(value))


def lookup_html(records: Sequence[Mapping[str, Any]]) -> str:
    """Everything a lookup record holds, one card per code."""
    cards = []
    for r in records:
        code = esc(r["code"])
        if r["status"] == "unknown":
            cards.append(
                f'<div class="card" data-code="{code}"><h3>{code}</h3>'
                f"{badge_html('not_verified')} Not in the ruleset (unknown code): "
                "nothing about it can be verified. Check it in the current code set."
                "</div>"
            )
            continue
        facts: list[tuple[str, str]] = [
            ("Family", r.get("family_title") or r.get("family") or ""),
            ("Kind", r.get("kind") or ""),
            (
                "Extent",
                (r.get("extent") or "")
                + (f" (counterpart {r['counterpart']})" if r.get("counterpart") else ""),
            ),
        ]
        if r.get("add_on"):
            prim = ", ".join(r.get("primaries") or []) or "no fixed list"
            facts.append(
                (
                    "Add-on",
                    f"yes; primaries: {prim}"
                    + ("" if r.get("primaries_exhaustive") else " (list not exhaustive)"),
                )
            )
            if r.get("excluded_primaries"):
                facts.append(("Never with", ", ".join(r["excluded_primaries"])))
        else:
            facts.append(("Add-on", "no"))
        if r.get("primaries_note"):
            facts.append(("Primaries note", r["primaries_note"]))
        guidance = _yes_no(r.get("guidance_included"))
        if r.get("included_guidance"):
            guidance += f" (do not add {', '.join(r['included_guidance'])})"
        facts.append(("Imaging guidance included", guidance))
        ul = r.get("unit_limit")
        if ul:
            facts.append(
                (
                    "Unit limit",
                    f"{ul['value']} per {ul['per']} ({ul['adjudication']})"
                    + (f": {ul['note']}" if ul.get("note") else ""),
                )
            )
        facts.append(("26/TC", r.get("pc_tc") or ""))
        facts.append(("Bilateral", r.get("bilateral") or ""))
        if r.get("notes"):
            facts.append(("Notes", r["notes"]))
        srcs = ", ".join(
            s["key"] + (f" ({s['where']})" if s.get("where") else "")
            for s in r.get("sources") or []
        )
        facts.append(("Sources", srcs))
        facts.append(
            (
                "Confidence",
                (r.get("confidence") or "")
                + (" - NEEDS REVIEW (weakly sourced)" if r.get("needs_review") else ""),
            )
        )
        head = f'<h3>{code} <span class="label">{esc(r.get("label"))}</span></h3>'
        if r["status"] == "deleted":
            repl = ", ".join(r.get("replaced_by") or []) or "no direct replacement"
            head += (
                f'<div class="banner">Deleted since {esc(r.get("deleted"))}; use: {esc(repl)}</div>'
            )
        table = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in facts)
        docs = "".join(
            f"<div><b>{esc(d['title'])}</b><ul>"
            + "".join(f"<li>{esc(e['label'])}</li>" for e in d["elements"])
            + "</ul></div>"
            for d in r.get("documentation") or []
        )
        pairs = r.get("pairs") or []
        pair_rows = "".join(
            f"<tr><td>{esc(p['column1'])}</td><td>{esc(p['column2'])}</td>"
            f"<td>{esc(p['relation'])}</td>"
            f"<td>{esc('' if p['modifier_indicator'] is None else p['modifier_indicator'])}</td>"
            f"<td>{esc(' '.join(p['fix']) if p.get('fix') else '')}</td>"
            f"<td>{esc(p.get('rationale') or '')}</td><td>{esc(', '.join(p['sources']))}"
            f" [{esc(p['confidence'])}]</td></tr>"
            for p in pairs
        )
        pair_html = (
            f"<details><summary>{len(pairs)} pair edit(s)</summary><table class='codes'>"
            "<thead><tr><th>Column 1</th><th>Column 2</th><th>Relation</th><th>Modifier ind.</th>"
            "<th>Fix</th><th>Why</th><th>Sources</th></tr></thead>"
            f"<tbody>{pair_rows}</tbody></table></details>"
            if pairs
            else ""
        )
        cards.append(
            f'<div class="card" data-code="{code}">{head}<table class="facts">{table}'
            f"</table>{docs}{pair_html}</div>"
        )
    ruleset = next((r.get("ruleset") for r in records if r.get("ruleset")), None)
    tail = f'<div class="muted">ruleset {esc(ruleset)}</div>' if ruleset else ""
    return "".join(cards) + tail


def parse_code_list(text: str) -> list[str]:
    """Codes typed as '76937, 20611 +76942' (separators: spaces, commas, semicolons, '+')."""
    return [t for t in re.split(r"[\s,;]+", text.replace("+", " ").strip()) if t]


def codes_in_text(text: str, catalog: Catalog) -> list[str]:
    """Catalog codes mentioned in a note, in order (the deterministic code suggestion)."""
    found = (m.group(1).upper() for m in _CODE_TOKEN_RE.finditer(text))
    return [c for c in dict.fromkeys(found) if catalog.get(c) is not None]


# ------------------------------------------------------------------------- note audit


def _set_html(s: SetResult) -> str:
    rows = "".join(
        f'<tr data-element="{esc(e.element)}" data-status="{esc(e.status.value)}">'
        f"<td>{esc(e.label)}</td><td>{_badge(ELEMENT_BADGES, e.status)}</td>"
        f'<td class="muted">{esc(e.evidence or "")}</td></tr>'
        for e in s.elements
    )
    rule = f'<div class="muted">{esc(s.rule)}</div>' if s.rule else ""
    return (
        f'<div class="set"><b>{esc(s.title)}</b> '
        f"{_badge(ELEMENT_BADGES, 'present' if s.complete else 'missing')}"
        f"<table class='codes'><thead><tr><th>Element</th><th>Status</th><th>Evidence in the "
        f"note</th></tr></thead><tbody>{rows}</tbody></table>{rule}"
        f"<div class='muted'>Sources: {esc(', '.join(s.sources))} (confidence "
        f"{esc(s.confidence)})</div></div>"
    )


def audit_html(audit: NoteAudit) -> str:
    """Per code: documentation elements present or missing, and complete versus limited."""
    if not audit.codes:
        return '<p class="muted">No code to audit: pick codes or let the advisor suggest them.</p>'
    cards = []
    for c in audit.codes:
        if c.supported_extent == "complete":
            extent = '<span class="badge badge-verified">supports complete</span>'
        elif c.supported_extent == "limited":
            extent = '<span class="badge badge-corrected">supports only limited</span>'
        else:
            extent = ""
        doc = {
            True: badge_html("verified"),
            False: _badge(ELEMENT_BADGES, "missing"),
            None: badge_html("not_verified"),
        }[c.documented]
        sets = [*c.documentation, *([c.complete_exam] if c.complete_exam else [])]
        cards.append(
            f'<div class="card" data-code="{esc(c.code)}"><h3>{esc(c.code)} '
            f'<span class="label">{esc(c.label or "not in the ruleset")}</span></h3>'
            f"<div>Documentation {doc} {extent}</div><p>{esc(c.message)}</p>"
            + "".join(_set_html(s) for s in sets)
            + "</div>"
        )
    return (
        "".join(cards) + f'<div class="muted">ruleset {esc(audit.ruleset)} · element '
        "detection is rule-based (patterns and negations), not a model</div>"
    )


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


# --------------------------------------------------------------------- conversations


@dataclass
class ChatTurn:
    """One question and its final answer, with the passage texts its citations point to."""

    question: str
    answer: dict[str, Any]
    passages: dict[str, str] = field(default_factory=dict)
    feedback: str | None = None
    audit_id: str | None = None  # the audit-log entry of this answer, for feedback
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        """JSON form used by the export."""
        cited = {str(c.get("id")) for c in self.answer.get("citations") or []}
        return {
            "at": self.at,
            "question": self.question,
            "answer": self.answer,
            "passages": {
                k: v[:_MAX_EXPORT_PASSAGE] for k, v in self.passages.items() if k in cited
            },
            "feedback": self.feedback,
        }


def export_json(turns: Sequence[ChatTurn], *, ruleset: str = "") -> str:
    """The conversation as JSON: every answer with its verdicts, findings and citations."""
    doc = {
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "ruleset": ruleset,
        "turns": [t.to_dict() for t in turns],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


def _md_cell(value: object) -> str:
    return str(value).replace("|", "/").replace("\n", " ")


def export_markdown(turns: Sequence[ChatTurn], *, ruleset: str = "") -> str:
    """The conversation as Markdown with a verdict table, findings and citations per answer."""
    out = ["# Ultrasound coding advisor: conversation", ""]
    if ruleset:
        out += [f"Ruleset: {ruleset}", ""]
    for i, t in enumerate(turns, 1):
        a = t.answer
        out += [
            f"## {i}. {t.question}",
            "",
            f"_{t.at} · ruleset {a.get('ruleset', '')} · drafted by {a.get('backend', '')}_",
            "",
        ]
        if a.get("banner"):
            out += [f"> {a['banner']}", ""]
        out += [a.get("answer", ""), ""]
        lines = list(a.get("codes") or []) + list(a.get("removed") or [])
        if lines:
            out += [
                "| Code | Description | Status | Units | Modifiers | Rules |",
                "|---|---|---|---|---|---|",
            ]
            for c in lines:
                label = BADGES.get(_status_value(c["status"]), (c["status"], ""))[0]
                out.append(
                    f"| {c['code']} | {_md_cell(c.get('label') or 'not in the ruleset')} | "
                    f"{label.upper()} | {c.get('units', 1)} | "
                    f"{', '.join(c.get('modifiers') or []) or '-'} | "
                    f"{', '.join(_rules(c.get('findings') or []))} |"
                )
            out.append("")
        findings = a.get("findings") or []
        if findings:
            out += ["### Findings", ""]
            for f in findings:
                codes = " + ".join(f.get("codes") or []) or "text"
                out.append(
                    f"- **{str(f.get('severity', '')).upper()}** {codes} "
                    f"`{f.get('rule', '')}`: {f.get('message', '')}"
                )
                fix = _fix_text(f.get("fix"))
                if fix:
                    out.append(f"  - Fix: {fix}")
                if f.get("sources"):
                    out.append(
                        f"  - Sources: {', '.join(f['sources'])} "
                        f"(confidence {f.get('confidence', '')})"
                    )
            out.append("")
        cites = a.get("citations") or []
        if cites:
            out += ["### Citations", ""]
            for j, c in enumerate(cites, 1):
                out.append(
                    f"{j}. {c.get('title', '')} - {c.get('section', '')} "
                    f"({c.get('source', '')}, id {c.get('id', '')})"
                )
                text = c.get("text") or t.passages.get(str(c.get("id")), "")
                if text:
                    quoted = " ".join(text.split())[:_MAX_EXPORT_PASSAGE]
                    out.append(f"   > {quoted}")
            out.append("")
        if t.feedback:
            out += [f"Feedback: {t.feedback}", ""]
    return "\n".join(out).rstrip() + "\n"


def feedback_record(turn: ChatTurn, liked: bool, *, comment: str = "") -> dict[str, Any]:
    """What one thumbs up/down stores: the question, the verdicts and the ruleset."""
    a = turn.answer
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "rating": "up" if liked else "down",
        "question": turn.question,
        "codes": [
            {"code": c["code"], "status": _status_value(c["status"])} for c in a.get("codes") or []
        ],
        "removed": [c["code"] for c in a.get("removed") or []],
        "findings": [f.get("rule") for f in a.get("findings") or []],
        "ruleset": a.get("ruleset"),
        "backend": a.get("backend"),
        "comment": comment,
    }


_FEEDBACK_LOCK = threading.Lock()


def append_feedback(path: Path, record: Mapping[str, Any]) -> None:
    """Append one JSON line (the audit log replaces this file later)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False, default=str)
    with _FEEDBACK_LOCK, path.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")


# -------------------------------------------------------------------- model warm-up


class PassageMemo:
    """Wraps the retriever to remember passage texts, so citations can show what they cite.

    Answers carry citation ids, titles and sources only; the text is kept here for the
    passages actually retrieved in this process (bounded, oldest forgotten first).
    """

    def __init__(self, factory: Any, limit: int = 2000) -> None:
        """``factory`` builds the real retriever on first use (it loads embeddings)."""
        self._factory = factory
        self._inner: Any = None
        self._texts: dict[str, str] = {}
        self._limit = limit
        self._lock = threading.Lock()

    @property
    def inner(self) -> Any:
        """The wrapped retriever."""
        with self._lock:
            if self._inner is None:
                self._inner = self._factory()
            return self._inner

    def search(self, query: str, k: int | None = None) -> Any:
        """Search and remember the texts of the returned passages."""
        result = self.inner.search(query, k)
        with self._lock:
            for p in getattr(result, "passages", []):
                self._texts[p.id] = p.text
            while len(self._texts) > self._limit:
                self._texts.pop(next(iter(self._texts)))
        return result

    def warm_up(self) -> None:
        """Load the retriever's embedding model and corpus."""
        warm = getattr(self.inner, "warm_up", None)
        if callable(warm):
            warm()

    def texts(self, ids: Iterable[str]) -> dict[str, str]:
        """Known texts of the given passage ids."""
        with self._lock:
            return {i: self._texts[i] for i in ids if i in self._texts}


class Warmup:
    """Runs start-up steps in a background thread and reports their progress.

    Steps are (name, callable) pairs run in order; a failing step is recorded and the next
    one still runs, because a missing index must not hide a working model or the reverse.
    """

    def __init__(self, steps: Sequence[tuple[str, Any]]) -> None:
        """Keep the steps; nothing runs until :meth:`start`."""
        self.steps = list(steps)
        self.state: dict[str, str] = {name: "waiting" for name, _ in self.steps}
        self.errors: dict[str, str] = {}
        self.seconds: dict[str, float] = {}
        self.done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Warmup:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="advisor-warmup", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for name, step in self.steps:
                self.state[name] = "loading"
                t0 = time.perf_counter()
                try:
                    step()
                except Exception as exc:  # shown in the UI; the app keeps serving lookups
                    log.warning("warm-up step %s failed: %s", name, exc, exc_info=True)
                    self.state[name] = "failed"
                    self.errors[name] = error_message(exc)
                else:
                    self.state[name] = "ready"
                self.seconds[name] = time.perf_counter() - t0
        finally:
            self.done.set()

    @property
    def ready(self) -> bool:
        """True when every step finished (successfully or not)."""
        return self.done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the warm-up finished; False on timeout."""
        return self.done.wait(timeout)

    def summary(self) -> str:
        """One line: each step with its state, and the error of a failed step."""
        parts = []
        for name, _ in self.steps:
            st = self.state[name]
            extra = (
                f" ({self.seconds[name]:.0f} s)" if st == "ready" and name in self.seconds else ""
            )
            err = f": {self.errors[name]}" if name in self.errors else ""
            parts.append(f"{name} {st}{extra}{err}")
        return "; ".join(parts)


def status_line(warmup: Warmup | None, backend: str) -> str:
    """The short status shown at the top of the page."""
    if backend == "none":
        return (
            "Model: off (backend 'none'): answers list candidate codes, never verified. "
            "Lookups, claim checks and note audits work."
        )
    if warmup is None:
        return "Model: not started."
    if not warmup.ready:
        return (
            f"Model: loading in the background ({warmup.summary()}). Lookups, claim checks "
            "and note audits already work."
        )
    if warmup.errors:
        return (
            f"Model: problem at start-up ({warmup.summary()}). Chat answers fall back to "
            "unverified candidates; lookups and claim checks work."
        )
    return f"Model: ready ({warmup.summary()})."
