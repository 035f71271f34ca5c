"""Turn documents into citable chunks: markdown, text, HTML and PDF, plus catalog entries.

Chunks follow the document's own structure (headings, then paragraphs) so a citation
names a section a person can find. Each chunk carries the metadata a citation needs
(source, title, section, page, as-of date, source keys) and the codes it mentions, and
its id is derived from its content, so re-indexing an unchanged passage keeps its id.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from knowledge.codes import mentions

if TYPE_CHECKING:
    from knowledge.catalog import Catalog
    from knowledge.schema import CodeEntry

Kind = Literal["guideline", "code", "user"]


SUPPORTED_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".html", ".htm", ".pdf"})

# MiniLM reads at most 256 word pieces (about 1,000 characters of English); longer chunks
# would be silently truncated by the model, so sections are packed up to this size.
MAX_CHARS = 1000
# The tail of the previous chunk repeated at the start of the next one, so a sentence
# that answers a question is never cut from the context that explains it.
OVERLAP_CHARS = 200

_HEADING_RE = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FRONT_MATTER_RE = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.DOTALL)
_SENTENCE_RE = re.compile(r"(?<=[.!?;:])\s+")


class DocumentError(ValueError):
    """A document could not be turned into chunks; the message says what to do."""


@dataclass(frozen=True)
class Chunk:
    """One indexed passage with everything a citation needs."""

    id: str
    text: str
    source: str
    title: str
    section: str
    kind: Kind
    page: int | None = None
    as_of: str | None = None
    source_keys: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def search_text(self) -> str:
        """What is embedded and matched lexically: headings give the body its context."""
        head = self.title if self.section in ("", self.title) else f"{self.title} — {self.section}"
        return f"{head}\n{self.text}"

    def metadata(self) -> dict[str, str | int | float | bool]:
        """Flat metadata for Chroma (scalar values only; lists are joined)."""
        meta: dict[str, str | int | float | bool] = {
            "source": self.source,
            "title": self.title,
            "section": self.section,
            "kind": self.kind,
            "page": self.page if self.page is not None else -1,
            "as_of": self.as_of or "",
            "source_keys": ",".join(self.source_keys),
            # Space-padded so " 76942 " matches a whole code, never a prefix of another.
            "codes": " " + " ".join(self.codes) + " " if self.codes else "",
        }
        meta.update(self.extra)
        return meta


def chunk_id(source: str, section: str, text: str, page: int | None = None) -> str:
    """Stable id from the content: same source, section and text give the same id."""
    raw = f"{source}\n{page if page is not None else ''}\n{section}\n{text}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:20]


def codes_in(text: str) -> tuple[str, ...]:
    """Codes mentioned in a text, in order of first mention, without repeats."""
    return tuple(mentions(text))


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """YAML front matter (or {}) and the body after it."""
    m = _FRONT_MATTER_RE.match(text)
    if not m:
        return {}, text
    try:
        meta = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError as exc:
        raise DocumentError(f"front matter is not valid YAML: {exc}") from exc
    if not isinstance(meta, dict):
        raise DocumentError("front matter must be a YAML mapping")
    return meta, text[m.end() :]


def _split_long(paragraph: str, limit: int) -> list[str]:
    """Split an over-long paragraph at sentence ends (hard cut only for run-on text)."""
    if len(paragraph) <= limit:
        return [paragraph]
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_RE.split(paragraph):
        while len(sentence) > limit:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(sentence[:limit])
            sentence = sentence[limit:]
        if current and len(current) + 1 + len(sentence) > limit:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        pieces.append(current)
    return pieces


def _overlap_tail(text: str, size: int) -> str:
    """The last sentences of a chunk, up to about `size` characters."""
    if size <= 0:
        return ""
    sentences = _SENTENCE_RE.split(text)
    tail = ""
    for sentence in reversed(sentences):
        candidate = f"{sentence} {tail}".strip()
        if len(candidate) > size:
            break
        tail = candidate
    return tail


def pack_paragraphs(
    paragraphs: list[str], max_chars: int = MAX_CHARS, overlap: int = OVERLAP_CHARS
) -> list[str]:
    """Pack paragraphs into chunks of at most about max_chars, each overlapping the last."""
    units: list[str] = []
    for p in paragraphs:
        units.extend(_split_long(p, max_chars))
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for unit in units:
        if current and size + 2 + len(unit) > max_chars:
            done = "\n\n".join(current)
            chunks.append(done)
            tail = _overlap_tail(done, overlap)
            # Only carry the tail when it does not push the next chunk over the limit.
            current = [tail] if tail and len(tail) + 2 + len(unit) <= max_chars else []
            size = len(tail) if current else 0
        current.append(unit)
        size += len(unit) + (2 if len(current) > 1 else 0)
    if current:
        chunks.append("\n\n".join(current))
    return chunks


def _paragraphs(lines: list[str]) -> list[str]:
    """Blank-line separated paragraphs, whitespace-normalized inside each."""
    out: list[str] = []
    buf: list[str] = []
    for line in [*lines, ""]:
        if line.strip():
            buf.append(line.strip())
        elif buf:
            out.append(" ".join(buf))
            buf = []
    return out


@dataclass(frozen=True)
class DocMeta:
    """Document-level metadata shared by its chunks."""

    source: str
    title: str
    kind: Kind
    as_of: str | None = None
    source_keys: tuple[str, ...] = ()


def chunk_markdown(
    text: str, source: str, kind: Kind, default_title: str, title: str | None = None
) -> list[Chunk]:
    """Chunk markdown (front matter optional) by headings, then paragraphs with overlap."""
    meta, body = split_front_matter(text)
    if title:
        meta.setdefault("title", title)
    keys = meta.get("sources") or ()
    if isinstance(keys, str):
        keys = (keys,)
    as_of = meta.get("as_of")
    doc = DocMeta(
        source=source,
        title=str(meta.get("title") or "").strip(),
        kind=kind,
        as_of=str(as_of) if as_of else None,
        source_keys=tuple(str(k) for k in keys),
    )
    sections: list[tuple[str, list[str]]] = []
    current_heading = ""
    current_lines: list[str] = []
    first_h1 = ""
    in_fence = False
    for line in body.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        m = None if in_fence else _HEADING_RE.match(line)
        if m:
            sections.append((current_heading, current_lines))
            level, heading = len(m.group(1)), m.group(2).strip()
            if level == 1 and not first_h1:
                first_h1 = heading
            current_heading, current_lines = heading, []
        else:
            current_lines.append(line)
    sections.append((current_heading, current_lines))
    doc_title = doc.title or first_h1 or default_title
    doc = DocMeta(doc.source, doc_title, doc.kind, doc.as_of, doc.source_keys)
    return _chunks_from_sections(doc, [(h or doc_title, _paragraphs(ls)) for h, ls in sections])


def _chunks_from_sections(
    doc: DocMeta, sections: list[tuple[str, list[str]]], page: int | None = None
) -> list[Chunk]:
    chunks: list[Chunk] = []
    seen: set[str] = set()
    for heading, paragraphs in sections:
        if not paragraphs:
            continue
        for text in pack_paragraphs(paragraphs):
            cid = chunk_id(doc.source, heading, text, page)
            n = 1
            while cid in seen:  # the same paragraph twice in one section: keep both, distinct ids
                n += 1
                cid = chunk_id(doc.source, f"{heading}#{n}", text, page)
            seen.add(cid)
            chunks.append(
                Chunk(
                    id=cid,
                    text=text,
                    source=doc.source,
                    title=doc.title,
                    section=heading,
                    kind=doc.kind,
                    page=page,
                    as_of=doc.as_of,
                    source_keys=doc.source_keys,
                    codes=codes_in(f"{heading} {text}"),
                )
            )
    return chunks


def chunk_text(text: str, source: str, title: str) -> list[Chunk]:
    """Plain text: one section (the file name), paragraphs with overlap."""
    doc = DocMeta(source=source, title=title, kind="user")
    return _chunks_from_sections(doc, [(title, _paragraphs(text.splitlines()))])


_HTML_BLOCKS = ("h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "td", "th", "blockquote")


def html_to_markdown(html: str) -> tuple[str, str]:
    """The page title and a markdown rendering of its headings and text blocks."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "nav", "footer"]):
        tag.decompose()
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    if soup.title:
        soup.title.decompose()
    lines: list[str] = []
    for el in soup.find_all(_HTML_BLOCKS):
        # Nested blocks (a <p> inside an <li>) are emitted by the innermost one only.
        if el.find(_HTML_BLOCKS):
            continue
        text = " ".join(el.get_text(" ", strip=True).split())
        if not text:
            continue
        if el.name in ("h1", "h2", "h3", "h4", "h5", "h6"):
            lines.extend([f"{'#' * int(el.name[1])} {text}", ""])
        else:
            lines.extend([text, ""])
    if not lines:
        # Pages without block markup (bare text in <body>) still have text worth indexing.
        body = soup.body or soup
        lines = [" ".join(body.get_text(" ", strip=True).split())]
    return title, "\n".join(lines)


def chunk_html(html: str, source: str, default_title: str) -> list[Chunk]:
    """HTML: headings become sections, blocks become paragraphs."""
    title, md = html_to_markdown(html)
    return chunk_markdown(md, source, "user", default_title, title=title or None)


def chunk_pdf_pages(pages: list[str], source: str, title: str) -> list[Chunk]:
    """PDF text layer: one section per page, lines packed into paragraphs with overlap."""
    doc = DocMeta(source=source, title=title, kind="user")
    chunks: list[Chunk] = []
    for number, text in enumerate(pages, start=1):
        paragraphs = _paragraphs(text.splitlines())
        # Text layers often lack blank lines: treat each line as a unit so packing still works.
        if len(paragraphs) == 1 and len(paragraphs[0]) > MAX_CHARS:
            paragraphs = [ln.strip() for ln in text.splitlines() if ln.strip()]
        chunks.extend(_chunks_from_sections(doc, [(f"Page {number}", paragraphs)], page=number))
    return chunks


def code_entry_text(entry: CodeEntry, family_title: str, catalog: Catalog) -> str:
    """One line of prose per catalog code, worded so both coders and clinicians match it."""
    parts = [f"{entry.code} — {entry.label}", f"family: {family_title}"]
    parts.append(f"kind: {entry.kind.value}")
    if entry.extent.value != "single":
        extent = f"{entry.extent.value} study"
        if entry.counterpart:
            other = catalog.get(entry.counterpart)
            other_extent = other.extent.value if other else "other"
            extent += f"; {other_extent} counterpart {entry.counterpart}"
        parts.append(extent)
    if entry.add_on:
        prim = f"add-on code (+{entry.code}), reported with a primary code"
        if entry.primaries:
            prim += f" such as {', '.join(entry.primaries[:8])}"
        parts.append(prim)
    else:
        parts.append("not an add-on")
    sites = [s.replace("_", " ") for s in (entry.describes.sites if entry.describes else ())
             if s != "any"]
    if sites:
        parts.append(f"for {', '.join(sites[:6])}")
    if entry.guidance_included:
        parts.append("imaging guidance included in the code")
    elif entry.guidance_included is False:
        parts.append("without imaging guidance")
    if entry.included_guidance:
        parts.append(f"includes guidance {', '.join(entry.included_guidance)}")
    if not entry.active:
        replaced = f"; replaced by {', '.join(entry.replaced_by)}" if entry.replaced_by else ""
        parts.append(f"deleted code{replaced}")
    text = "; ".join(parts) + "."
    if entry.notes:
        text += f" {entry.notes.strip()}"
    return text


def chunk_catalog(catalog: Catalog) -> list[Chunk]:
    """One chunk per catalog code, so candidate codes can be retrieved like passages."""
    chunks: list[Chunk] = []
    for entry in catalog.codes.values():
        family = catalog.families.get(entry.family)
        family_title = family.title if family else entry.family
        text = code_entry_text(entry, family_title, catalog)
        source = f"catalog:{entry.code}"
        codes = (entry.code, *(c for c in codes_in(text) if c != entry.code))
        chunks.append(
            Chunk(
                id=chunk_id(source, entry.code, text),
                text=text,
                source=source,
                title=f"Catalog entry {entry.code}",
                section=entry.code,
                kind="code",
                as_of=str(catalog.as_of),
                source_keys=tuple(entry.sources),
                codes=codes,
                extra={"code": entry.code, "family": entry.family},
            )
        )
    return chunks


def read_document(path: Path, source: str) -> tuple[list[Chunk], list[str]]:
    """Chunks of one user file and warnings; raises DocumentError with a clear reason."""
    suffix = path.suffix.lower()
    title = path.stem.replace("_", " ").replace("-", " ").strip() or path.name
    if suffix == ".pdf":
        return chunk_pdf_pages(read_pdf_pages(path), source, title), []
    data = path.read_bytes()
    text, warnings = decode_text(data)
    if not text.strip():
        raise DocumentError("the file has no text (empty or whitespace only)")
    if suffix in (".html", ".htm"):
        chunks = chunk_html(text, source, title)
    elif suffix in (".md", ".markdown"):
        chunks = chunk_markdown(text, source, "user", title)
    else:
        chunks = chunk_text(text, source, title)
    if not chunks:
        raise DocumentError("no text found to index (markup only?)")
    return chunks, warnings


def decode_text(data: bytes) -> tuple[str, list[str]]:
    """UTF-8 first; then Windows-1252 with a warning; binary content is refused.

    Windows-1252 is the usual encoding of text exported by older Windows tools; it has
    undefined bytes, so real binary data still fails rather than turning into noise.
    """
    if not data.strip():
        raise DocumentError("the file is empty")
    if b"\x00" in data[:8192]:
        raise DocumentError("the file looks binary (contains NUL bytes), not text")
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            f"the file is not UTF-8 (bad byte at offset {first_bad}) nor Windows-1252: "
            "save it as UTF-8 and index it again"
        ) from exc
    return text, [
        f"not valid UTF-8 (first bad byte at offset {first_bad}); read as Windows-1252: "
        "check accented characters, or save the file as UTF-8"
    ]


def read_pdf_pages(path: Path) -> list[str]:
    """Text of each page of a PDF; raises DocumentError when there is nothing to read."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError, PyPdfError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            # An owner-password-only PDF opens with an empty user password.
            try:
                ok = reader.decrypt("")
            except (PyPdfError, NotImplementedError) as exc:
                raise DocumentError(
                    f"the PDF is encrypted and cannot be opened ({exc}): "
                    "save an unprotected copy and index that"
                ) from exc
            if not ok:
                raise DocumentError(
                    "the PDF is encrypted with a password: save an unprotected copy and index that"
                )
        pages = [(page.extract_text() or "") for page in reader.pages]
    except DocumentError:
        raise
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise DocumentError(f"the PDF could not be read ({type(exc).__name__}: {exc})") from exc
    if not any(p.strip() for p in pages):
        raise DocumentError(
            "the PDF has no text layer (scanned images?): run OCR on it first, then index it"
        )
    return pages
