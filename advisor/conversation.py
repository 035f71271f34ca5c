"""A conversation in the web app: its turns, their exports (JSON, Markdown) and feedback."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from advisor.ui import BADGES, _fix_text, _rules, _status_value

log = logging.getLogger(__name__)


_MAX_EXPORT_PASSAGE = 2000


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


