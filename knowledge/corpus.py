"""The built-in guideline corpus: markdown documents with front matter, in our own words."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import yaml
from pydantic import Field, ValidationError

from knowledge.catalog import GUIDELINES_DIR, Catalog
from knowledge.loader import KnowledgeError
from knowledge.schema import Strict

_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)


class GuidelineMeta(Strict):
    """Front matter of a guideline document."""

    title: str = Field(min_length=3, description="Document title.")
    sources: tuple[str, ...] = Field(min_length=1, description="Source keys it draws on.")
    as_of: date = Field(description="Date the document was last reviewed.")
    codes: tuple[str, ...] = Field((), description="Codes the document discusses.")


class GuidelineDoc(Strict):
    """One parsed guideline document."""

    path: Path = Field(description="File path.")
    meta: GuidelineMeta = Field(description="Front matter.")
    body: str = Field(description="Markdown body after the front matter.")


def parse_guideline(path: Path) -> GuidelineDoc:
    """Parse one markdown file with front matter; errors name the file (and line)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeError([f"{path}: cannot read: {exc}"]) from exc
    m = _FRONT.match(text)
    if not m:
        raise KnowledgeError([f"{path}:1: missing front matter (--- title/sources/as_of ---)"])
    try:
        data = yaml.safe_load(m.group(1)) or {}
        meta = GuidelineMeta.model_validate(data)
    except yaml.YAMLError as exc:
        raise KnowledgeError([f"{path}:2: front matter is not valid YAML: {exc}"]) from exc
    except ValidationError as exc:
        raise KnowledgeError(
            [f"{path}:2: front matter {'.'.join(map(str, e['loc']))}: {e['msg']}"
             for e in exc.errors()]
        ) from None
    return GuidelineDoc(path=path, meta=meta, body=text[m.end():])


def load_guidelines(
    folder: Path = GUIDELINES_DIR, catalog: Catalog | None = None
) -> list[GuidelineDoc]:
    """Every guideline document, cross-checked against the catalog's sources when given."""
    docs: list[GuidelineDoc] = []
    problems: list[str] = []
    for path in sorted(folder.glob("*.md")):
        try:
            doc = parse_guideline(path)
        except KnowledgeError as exc:
            problems.extend(exc.problems)
            continue
        if catalog is not None:
            for key in doc.meta.sources:
                if key not in catalog.sources:
                    problems.append(f"{path}:2: source key {key} is not in sources.yaml")
        for code in doc.meta.codes:
            if code not in doc.body:
                problems.append(f"{path}:2: listed code {code} does not appear in the body")
        docs.append(doc)
    if problems:
        raise KnowledgeError(problems)
    return docs
