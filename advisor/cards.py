"""HTML cards for the web app's lookup and note-audit tabs (the chat's answer and the
claim check are :mod:`advisor.ui`). Everything shown is HTML-escaped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from advisor.lookup import guidance_words, in_words
from advisor.ui import ELEMENT_BADGES, _badge, badge_html, esc, source_link
from guardrails.audit import NoteAudit, SetResult

# ----------------------------------------------------------------------------- lookup


def _lookup_facts(r: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The fact rows of one lookup card."""
    facts: list[tuple[str, str]] = [
        ("Family", r.get("family_title") or r.get("family") or ""),
        ("Kind", in_words("kind", r.get("kind"))),
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
    guidance = guidance_words(dict(r))
    if guidance:
        facts.append(("Imaging guidance", guidance))
    ul = r.get("unit_limit")
    if ul:
        facts.append(
            (
                "Unit limit",
                f"{ul['value']} per {ul['per']}, {in_words('adjudication', ul['adjudication'])}"
                + (f": {ul['note']}" if ul.get("note") else ""),
            )
        )
    facts.append(("26/TC", in_words("pc_tc", r.get("pc_tc"))))
    facts.append(("Bilateral", in_words("bilateral", r.get("bilateral"))))
    if r.get("notes"):
        facts.append(("Notes", r["notes"]))
    facts.append(
        (
            "Confidence",
            (r.get("confidence") or "")
            + (" - NEEDS REVIEW (weakly sourced)" if r.get("needs_review") else ""),
        )
    )
    return facts


def _pairs_html(pairs: Sequence[Mapping[str, Any]]) -> str:
    """The pair edits of one lookup card, folded."""
    pair_rows = "".join(
        f"<tr><td>{esc(p['column1'])}</td><td>{esc(p['column2'])}</td>"
        f"<td>{esc(in_words('relation', p['relation']))}</td>"
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
    return pair_html


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
        facts = _lookup_facts(r)
        srcs = ", ".join(source_link(s["key"], s.get("where") or "")
                         for s in r.get("sources") or [])
        head = f'<h3>{code} <span class="label">{esc(r.get("label"))}</span></h3>'
        if r["status"] == "deleted":
            repl = ", ".join(r.get("replaced_by") or []) or "no direct replacement"
            head += (
                f'<div class="banner">Deleted since {esc(r.get("deleted"))}; use: {esc(repl)}</div>'
            )
        table = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in facts)
        if srcs:
            table += f"<tr><th>Sources</th><td>{srcs}</td></tr>"
        docs = "".join(
            f"<div><b>{esc(d['title'])}</b><ul>"
            + "".join(f"<li>{esc(e['label'])}</li>" for e in d["elements"])
            + "</ul></div>"
            for d in r.get("documentation") or []
        )
        pair_html = _pairs_html(r.get("pairs") or [])
        cards.append(
            f'<div class="card" data-code="{code}">{head}<table class="facts">{table}'
            f"</table>{docs}{pair_html}</div>"
        )
    ruleset = next((r.get("ruleset") for r in records if r.get("ruleset")), None)
    tail = f'<div class="muted">ruleset {esc(ruleset)}</div>' if ruleset else ""
    return "".join(cards) + tail


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
