"""One structured model call (streamed as readable text where the backend streams), and the
model's JSON reply read into the draft the checker is handed."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from advisor.prompts import (
    ANSWER_CHARS,
    REASON_CHARS,
    TEMPLATES,
    PromptContext,
    Task,
    draft_schema,
)
from advisor.streaming import DraftRenderer
from guardrails.grounding import grounded_modifiers
from guardrails.report import Draft, DraftCode

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage

    from knowledge.catalog import Catalog

log = logging.getLogger(__name__)


def request_schema(task: Task, ctx: PromptContext | None) -> dict[str, Any]:
    """The schema a call asks for: a draft's narrowed to its candidates, else the task's."""
    if task in (Task.DRAFT, Task.REASK):
        return draft_schema(ctx)
    return TEMPLATES[task].schema


def call_model(
    model: BaseChatModel,
    task: Task,
    messages: list[BaseMessage],
    ctx: PromptContext | None,
    *,
    timeout_s: float,
    max_tokens: int,
    constrained: dict[str, Any] | None = None,
) -> Generator[str, None, dict[str, Any]]:
    """One structured model call; yields readable text while it streams, returns the reply.
    ``constrained``: the request schema when the caller has it already (see
    :func:`request_schema`)."""
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
    if constrained is None:
        constrained = request_schema(task, ctx)
    schema = tpl.schema
    log.info("model call: %s", task)
    if not isinstance(model, LlamaCppChatModel):
        return structured_call(
            model, messages, schema, timeout_s=timeout_s, request_schema=constrained
        )
    renderer = DraftRenderer()
    parts: list[str] = []
    try:
        for chunk in model.stream(
            messages,
            response_format={"type": "json_object", "schema": constrained},
            timeout_s=timeout_s,
            max_tokens=min(max_tokens, tpl.max_tokens),
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


# Letters of other scripts that look like Latin ones: a model sometimes writes one inside
# an English word ("ultrasound-guіded" with a Cyrillic i). Mapped only inside a word that is
# otherwise Latin.
_LOOKALIKES = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j",
    "ѕ": "s", "ԁ": "d", "ӏ": "l", "һ": "h", "к": "k", "м": "m", "т": "t", "в": "b", "н": "h",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S",
    "α": "a", "ο": "o", "ρ": "p", "ι": "i", "κ": "k", "ν": "v", "τ": "t", "υ": "u", "ε": "e",
    "Α": "A", "Β": "B", "Ε": "E", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P",
    "Τ": "T", "Χ": "X",
})
_WORD_RE = re.compile(r"[^\W\d_]+(?:[-'][^\W\d_]+)*")
_END_RE = re.compile(r"[.;!?](?=\s|$)")


def normalize_text(text: str) -> str:
    """NFKC, whitespace collapsed, and look-alike letters inside Latin words made Latin."""
    text = " ".join(unicodedata.normalize("NFKC", text).split())

    def fix(m: re.Match[str]) -> str:
        word = m.group(0)
        mapped = word.translate(_LOOKALIKES)
        mixed = not word.isascii() and any(ch.isascii() and ch.isalpha() for ch in word)
        return mapped if mixed and mapped.isascii() else word

    return _WORD_RE.sub(fix, text)


def whole(text: str, cap: int) -> str:
    """The text without a sentence that the length cap cut off (text shorter than the cap
    is whole)."""
    if len(text) < cap:
        return text
    ends = list(_END_RE.finditer(text))
    return text[: ends[-1].end()].strip() if ends else ""


def clean_reason(reason: str, code: str, ctx: PromptContext) -> str:
    """A drafted reason fit to show beside its code, or '' when it is not.

    Normalized; cut back to whole sentences if the length cap cut it; dropped when it is
    another candidate's label (a small model copies the label of the code next to it).
    """
    text = whole(normalize_text(reason), REASON_CHARS)

    def words(s: str) -> str:
        return " ".join(re.findall(r"\w+", s.casefold()))

    key = words(text)
    labels = {c.code: words(c.label) for c in ctx.candidates}
    own = labels.get(code, "")
    for other, label in labels.items():
        if other != code and label and label in key and not (own and own in key):
            return ""
    return text


def to_draft(raw: dict[str, Any], ctx: PromptContext, catalog: Catalog | None = None) -> Draft:
    """The draft a model reply stands for: its code lines, prose and the passages each cites.

    With ``catalog``, a line keeps only the modifiers the question grounds and the code
    takes (guardrails.grounding): a modifier the model invented is not drafted.
    """
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
        if catalog is not None and mods:
            kept = grounded_modifiers(catalog, code, mods, ctx.question, ctx.history)
            if kept != mods:
                log.info("modifiers not drafted on %s: %s", code,
                         ", ".join(m for m in mods if m not in kept))
            mods = kept
        cited = ctx.resolve([str(c) for c in item.get("citations") or []])
        reason = clean_reason(str(item.get("reason", "")), code, ctx)
        lines.append(DraftCode(code, units, mods, reason, cited))
    # The question goes along as context: the checker reads it for body sites only.
    return Draft(
        codes=tuple(lines), text=whole(normalize_text(str(raw.get("answer", ""))), ANSWER_CHARS),
        context=ctx.question, history=ctx.history,
    )
