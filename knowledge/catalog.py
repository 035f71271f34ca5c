"""The catalog: codes, pair edits, element sets and modifier rules, loaded and cross-checked.

``load_catalog()`` reads knowledge/data/*.yaml, validates every file against the schema
(errors carry file and line), checks every cross-reference, and returns an immutable
:class:`Catalog` with constant-time lookups. Imported CMS files (see :mod:`knowledge.cms`)
take precedence over built-in edits for the pairs, unit limits and add-on primaries they cover.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from knowledge.loader import KnowledgeError, Located, line_of, load_model
from knowledge.schema import (
    CodeEntry,
    CodeGroup,
    CodesFile,
    Confidence,
    DocumentationFile,
    ElementSet,
    Family,
    FixKind,
    Kind,
    Misconception,
    ModifierRule,
    ModifiersFile,
    PairEdit,
    PairRelation,
    PairRule,
    PairsFile,
    Source,
    Sourced,
    SourceScope,
    SourcesFile,
    UnitLimit,
)
from knowledge.vocab_check import check_vocabulary
from knowledge.vocab_schema import VocabularyFile

if TYPE_CHECKING:
    from knowledge.cms import CmsStore

DATA_DIR = Path(__file__).resolve().parent / "data"
GUIDELINES_DIR = Path(__file__).resolve().parent / "guidelines"

Status = Literal["active", "deleted", "unknown"]


@dataclass(frozen=True)
class AddOnPrimaries:
    """Primaries of an add-on after CMS overlay."""

    primaries: frozenset[str]
    excluded: frozenset[str]
    exhaustive: bool
    origin: Literal["builtin", "cms"]


@dataclass
class Catalog:
    """Everything the checker and lookups need, indexed for constant-time access."""

    release: str
    as_of: date
    codes: dict[str, CodeEntry]
    families: dict[str, Family]
    groups: dict[str, CodeGroup]
    sources: dict[str, Source]
    rules: dict[str, PairRule]
    element_sets: dict[str, ElementSet]
    modifiers: dict[str, ModifierRule]
    misconceptions: tuple[Misconception, ...]
    vocabulary: VocabularyFile = field(
        default_factory=lambda: VocabularyFile(concepts=()), repr=False
    )
    cms_quarter: str | None = None
    _pairs: dict[tuple[str, str], PairEdit] = field(default_factory=dict, repr=False)
    _pairs_by_code: dict[str, list[PairEdit]] = field(default_factory=dict, repr=False)
    _unit_limits: dict[str, UnitLimit] = field(default_factory=dict, repr=False)
    _addons: dict[str, AddOnPrimaries] = field(default_factory=dict, repr=False)
    _addons_by_primary: dict[bool, dict[str, tuple[str, ...]]] = field(
        default_factory=dict, repr=False
    )

    # -- lookups -----------------------------------------------------------------------
    def get(self, code: str) -> CodeEntry | None:
        """The entry for a code, or None when the catalog does not know it."""
        return self.codes.get(code)

    def status(self, code: str) -> Status:
        """active, deleted or unknown."""
        entry = self.codes.get(code)
        if entry is None:
            return "unknown"
        return "active" if entry.active else "deleted"

    def pair(self, a: str, b: str) -> PairEdit | None:
        """The edit between two codes in either order (column 1 first as stored)."""
        return self._pairs.get((a, b)) or self._pairs.get((b, a))

    def pairs_for(self, code: str) -> list[PairEdit]:
        """All edits in which a code takes part."""
        return self._pairs_by_code.get(code, [])

    def unit_limit(self, code: str) -> UnitLimit | None:
        """Unit limit after CMS overlay."""
        return self._unit_limits.get(code)

    def addon_primaries(self, code: str) -> AddOnPrimaries | None:
        """Allowed primaries of an add-on after CMS overlay (None if not an add-on)."""
        return self._addons.get(code)

    def addons_by_primary(self, *, counted: bool = False) -> dict[str, tuple[str, ...]]:
        """Add-on codes by each primary they may be reported with, after CMS overlay
        (``counted``: only add-ons whose description counts a thing, one unit each).
        Built on first use."""
        hit = self._addons_by_primary.get(counted)
        if hit is not None:
            return hit
        out: dict[str, list[str]] = {}
        for code, e in self.codes.items():  # in catalog order
            ap = self._addons.get(code)
            if ap is None or (counted and (e.describes is None or e.describes.count is None)):
                continue
            for p in sorted(ap.primaries):
                out.setdefault(p, []).append(code)
        built = {p: tuple(v) for p, v in out.items()}
        self._addons_by_primary[counted] = built
        return built

    def is_add_on(self, code: str) -> bool:
        """True when the code is an add-on (built-in or CMS add-on file)."""
        return code in self._addons

    @property
    def ruleset(self) -> str:
        """Version string shown with every answer."""
        base = f"builtin {self.release}"
        return f"{base} + CMS {self.cms_quarter}" if self.cms_quarter else base

    def codes_in_family(self, family: str) -> list[CodeEntry]:
        """Codes of one family, in catalog order."""
        return [c for c in self.codes.values() if c.family == family]

    # -- construction ------------------------------------------------------------------
    def _index(self, cms: CmsStore | None = None) -> None:
        pairs: dict[tuple[str, str], PairEdit] = {}
        for rule in self.rules.values():
            for edit in expand_rule(rule):
                pairs[(edit.column1, edit.column2)] = edit
        limits = {c.code: c.unit_limit for c in self.codes.values() if c.unit_limit}
        addons = {
            c.code: AddOnPrimaries(
                frozenset(c.primaries),
                frozenset(c.excluded_primaries),
                c.primaries_exhaustive,
                "builtin",
            )
            for c in self.codes.values()
            if c.add_on
        }
        if cms is not None:
            for edit in cms.ptp:
                builtin = pairs.pop((edit.column2, edit.column1), None) or pairs.get(
                    (edit.column1, edit.column2)
                )
                if builtin is not None and builtin.origin == "builtin":
                    # The CMS file decides the indicator; our repair and wording stay useful.
                    edit = edit.model_copy(
                        update={
                            "replacement": builtin.replacement,
                            "drop_column2": edit.drop_column2 or builtin.drop_column2,
                            "allow_with": builtin.allow_with,
                        }
                    )
                pairs[(edit.column1, edit.column2)] = edit
            limits.update(cms.mue)
            for addon, aoc in cms.aoc.items():
                old = addons.get(addon)
                primaries = frozenset(aoc.primaries)
                if not aoc.exhaustive and old is not None:
                    # Types 2/3 allow primaries beyond the list: keep the ones we know too.
                    primaries |= old.primaries
                addons[addon] = AddOnPrimaries(
                    primaries,
                    old.excluded if old else frozenset(),
                    aoc.exhaustive,
                    "cms",
                )
            self.cms_quarter = cms.quarter
        by_code: dict[str, list[PairEdit]] = defaultdict(list)
        for edit in pairs.values():
            by_code[edit.column1].append(edit)
            by_code[edit.column2].append(edit)
        self._pairs = pairs
        self._pairs_by_code = dict(by_code)
        self._unit_limits = limits
        self._addons = addons


def expand_rule(rule: PairRule) -> list[PairEdit]:
    """Expand a set-based pair rule into one edit per column-1/column-2 pair."""
    edits = []
    for c1 in rule.column1:
        replacement = None
        drop = False
        if rule.fix is not None:
            if rule.fix.type.value == "replace_pair":
                replacement = rule.fix.replacements.get(c1)
            else:
                drop = True
        for c2 in rule.column2:
            if c1 == c2:
                continue
            edits.append(
                PairEdit(
                    column1=c1,
                    column2=c2,
                    relation=rule.relation,
                    modifier_indicator=rule.modifier_indicator,
                    rationale=rule.rationale,
                    allow_with=rule.allow_with,
                    replacement=replacement,
                    drop_column2=drop,
                    rule_id=rule.id,
                    effective=rule.effective,
                    deleted=rule.deleted,
                    sources=rule.sources,
                    confidence=rule.confidence,
                )
            )
    return edits


@dataclass(frozen=True)
class CodesOrigin:
    """For merged codes files: (node key, index in its file) of each code and group."""

    codes: list[tuple[str, int]]
    groups: list[tuple[str, int]]


# Long: one check per cross-reference between the data files (codes, pairs, documentation,
# modifiers, sources), each naming its file and line; the list reads best in order.
def _cross_check(
    codes_file: CodesFile,
    pairs_file: PairsFile,
    docs_file: DocumentationFile,
    mods_file: ModifiersFile,
    sources_file: SourcesFile,
    nodes: dict[str, Located],
    origin: CodesOrigin | None = None,
) -> list[str]:
    """Every reference points at something that exists; returns problems with file:line.

    ``codes_file`` may merge several codes files; ``origin`` says which file (node key) and
    index each code and group came from, so problems name the right file and line.
    """
    problems: list[str] = []
    if origin is None:
        origin = CodesOrigin(
            [("codes", i) for i in range(len(codes_file.codes))],
            [("codes", i) for i in range(len(codes_file.groups))],
        )

    def where(fname: str, *loc: int | str) -> str:
        located = nodes[fname]
        line = line_of(located, *loc)
        return f"{located.path}:{line}" if line else str(located.path)

    source_keys = {s.key for s in sources_file.sources}
    scope_of = {s.key: s.scope for s in sources_file.sources}
    seen: set[str] = set()
    for i, src in enumerate(sources_file.sources):
        if src.key in seen:
            problems.append(f"{where('sources', 'sources', i)}: duplicate source key {src.key}")
        seen.add(src.key)
    codes = {}
    for i, c in enumerate(codes_file.codes):
        fkey, j = origin.codes[i]
        if c.code in codes:
            problems.append(f"{where(fkey, 'codes', j)}: duplicate code {c.code}")
        codes[c.code] = c
    family_ids = {f.id for f in codes_file.families}
    set_ids = {s.id: s for s in docs_file.sets}

    def need_codes(
        fname: str, loc: tuple[int | str, ...], what: str, refs: tuple[str, ...]
    ) -> None:
        for ref in refs:
            if ref not in codes:
                problems.append(f"{where(fname, *loc)}: {what} {ref} is not in the catalog")

    def need_sources(fname: str, loc: tuple[int | str, ...], refs: tuple[str, ...]) -> None:
        for ref in refs:
            if ref not in source_keys:
                problems.append(f"{where(fname, *loc)}: source key {ref} is not in sources.yaml")

    def scopes(keys: tuple[str, ...]) -> set[SourceScope]:
        return {scope_of[k] for k in keys if k in scope_of}

    def need_support(fname: str, loc: tuple[int | str, ...], fact: Sourced) -> None:
        """A rule's sources exist and reach as far as the rule and its confidence claim."""
        need_sources(fname, loc, fact.sources)
        reach = scopes(fact.sources)
        if not reach or SourceScope.RULE in reach:
            return
        if reach == {SourceScope.EXISTENCE}:
            problems.append(
                f"{where(fname, *loc)}: cites only {', '.join(fact.sources)}, which support that "
                "a code exists, not this rule"
            )
        elif fact.confidence is Confidence.HIGH:
            problems.append(
                f"{where(fname, *loc)}: rests on the code descriptors alone "
                f"({', '.join(fact.sources)}), so its confidence is medium at most, not high"
            )

    for i, c in enumerate(codes_file.codes):
        fkey, j = origin.codes[i]
        loc: tuple[int | str, ...] = ("codes", j)
        if c.family not in family_ids:
            problems.append(f"{where(fkey, *loc, 'family')}: unknown family {c.family}")
        if c.counterpart:
            other = codes.get(c.counterpart)
            if other is None:
                need_codes(fkey, (*loc, "counterpart"), "counterpart", (c.counterpart,))
            elif other.counterpart not in (None, c.code):
                problems.append(
                    f"{where(fkey, *loc, 'counterpart')}: counterpart {c.counterpart} points "
                    f"to {other.counterpart}, not back to {c.code}"
                )
            elif other.extent == c.extent:
                problems.append(
                    f"{where(fkey, *loc, 'counterpart')}: {c.code} and {c.counterpart} are both "
                    f"{c.extent.value}"
                )
        if c.side_counterpart:
            other = codes.get(c.side_counterpart)
            if other is None:
                need_codes(
                    "codes", (*loc, "side_counterpart"), "side counterpart", (c.side_counterpart,)
                )
            elif other.side_counterpart != c.code or other.sides == c.sides:
                problems.append(
                    f"{where(fkey, *loc, 'side_counterpart')}: {c.code} and "
                    f"{c.side_counterpart} must name each other as side counterparts and cover "
                    "different sides"
                )
        if c.age_band is not None and not any(
            o.site_group == c.site_group and o.age_band not in (None, c.age_band)
            for o in codes_file.codes
        ):
            problems.append(
                f"{where(fkey, *loc, 'age_band')}: {c.code} has an age band but no code of "
                f"the other band shares its site_group ({c.site_group})"
            )
        need_codes(fkey, (*loc, "primaries"), "primary", c.primaries)
        need_codes(fkey, (*loc, "excluded_primaries"), "excluded primary", c.excluded_primaries)
        need_codes(fkey, (*loc, "included_guidance"), "included guidance", c.included_guidance)
        need_codes(fkey, (*loc, "replaced_by"), "replacement", c.replaced_by)
        if c.with_us_guidance:
            need_codes(fkey, (*loc, "with_us_guidance"), "guided code", (c.with_us_guidance,))
        need_sources(fkey, loc, c.sources)
        if c.confidence is not Confidence.LOW and scopes(c.sources) == {SourceScope.EXISTENCE}:
            problems.append(
                f"{where(fkey, *loc)}: {c.code} cites only {', '.join(c.sources)}, which "
                "support that it exists, not what it describes; cite the descriptor or another "
                "source, or make it low"
            )
        if c.unit_limit:
            need_support(fkey, (*loc, "unit_limit"), c.unit_limit)
        for j, m in enumerate(c.misreadings):
            need_codes(fkey, (*loc, "misreadings", j), "misreading fix", m.fix)
            need_support(fkey, (*loc, "misreadings", j), m)
        for j, im in enumerate(c.implied_by):
            need_codes(fkey, (*loc, "implied_by", j), "implied-by code", im.with_any)
            need_support(fkey, (*loc, "implied_by", j), im)
        for set_id in c.documentation:
            es = set_ids.get(set_id)
            if es is None or es.kind != "documentation":
                problems.append(
                    f"{where(fkey, *loc, 'documentation')}: no documentation set {set_id}"
                )
        if c.complete_elements:
            es = set_ids.get(c.complete_elements)
            if es is None or es.kind != "complete_exam":
                problems.append(
                    f"{where(fkey, *loc, 'complete_elements')}: no complete-exam set "
                    f"{c.complete_elements}"
                )
    for i, g in enumerate(codes_file.groups):
        gkey, j = origin.groups[i]
        need_codes(gkey, ("groups", j, "members"), "group member", g.members)
        need_support(gkey, ("groups", j), g)
    rule_ids: set[str] = set()
    for i, r in enumerate(pairs_file.rules):
        loc = ("rules", i)
        if r.id in rule_ids:
            problems.append(f"{where('pairs', *loc)}: duplicate rule id {r.id}")
        rule_ids.add(r.id)
        need_codes("pairs", (*loc, "column1"), "column-1 code", r.column1)
        need_codes("pairs", (*loc, "column2"), "column-2 code", r.column2)
        need_support("pairs", loc, r)
        if r.fix is not None:
            for c1, repl in r.fix.replacements.items():
                if c1 not in r.column1:
                    problems.append(f"{where('pairs', *loc, 'fix')}: {c1} is not in column1")
                need_codes("pairs", (*loc, "fix"), "replacement", repl)
        if r.fix is not None and r.fix.type is FixKind.DROP_COLUMN2:
            # Dropping column 2 must never take away a procedure and keep an add-on.
            for c1 in r.column1:
                e1 = codes.get(c1)
                if e1 is None or not e1.add_on:
                    continue
                for c2 in r.column2:
                    e2 = codes.get(c2)
                    if e2 is not None and not e2.add_on and e2.kind is Kind.PROCEDURE:
                        problems.append(
                            f"{where('pairs', *loc, 'fix')}: the fix drops the procedure {c2} "
                            f"and keeps the add-on {c1}; put the add-on in column 2"
                        )
        if r.relation is PairRelation.BUNDLED and r.modifier_indicator is None:
            problems.append(f"{where('pairs', *loc)}: a bundled rule needs a modifier_indicator")
    for i, eset in enumerate(docs_file.sets):
        need_codes("documentation", ("sets", i, "codes"), "code", eset.codes)
        need_support("documentation", ("sets", i), eset)
    for i, mod in enumerate(mods_file.modifiers):
        need_support("modifiers", ("modifiers", i), mod)
    for i, mc in enumerate(mods_file.misconceptions):
        need_support("modifiers", ("misconceptions", i), mc)
    return problems


FILES: dict[str, tuple[str, type[BaseModel]]] = {
    "codes": ("codes.yaml", CodesFile),
    "pairs": ("pairs.yaml", PairsFile),
    "documentation": ("documentation.yaml", DocumentationFile),
    "modifiers": ("modifiers.yaml", ModifiersFile),
    "sources": ("sources.yaml", SourcesFile),
    "vocabulary": ("vocabulary.yaml", VocabularyFile),
}


EXTRA_CODES = "codes-*.yaml"


def _merge_codes(
    main: CodesFile, extra: list[tuple[str, CodesFile]]
) -> tuple[CodesFile, CodesOrigin]:
    """codes.yaml followed by the further codes files, with where each entry came from."""
    files = [("codes", main), *extra]
    origin = CodesOrigin(
        [(k, i) for k, f in files for i in range(len(f.codes))],
        [(k, i) for k, f in files for i in range(len(f.groups))],
    )
    merged = CodesFile.model_construct(
        families=tuple(x for _, f in files for x in f.families),
        codes=tuple(x for _, f in files for x in f.codes),
        groups=tuple(x for _, f in files for x in f.groups),
    )
    return merged, origin


def build_catalog(data_dir: Path = DATA_DIR, cms: CmsStore | None = None) -> Catalog:
    """Load and cross-check every data file; raise KnowledgeError listing all problems."""
    loaded: dict[str, object] = {}
    nodes: dict[str, Located] = {}
    problems: list[str] = []
    for name, (fname, model) in FILES.items():
        path = data_dir / fname
        try:
            obj, node = load_model(path, model)
        except KnowledgeError as exc:
            problems.extend(exc.problems)
            continue
        loaded[name] = obj
        nodes[name] = node
    # Further codes files (codes-*.yaml) hold more entries in the same shape; they load and
    # are checked like codes.yaml, each error naming its own file and line.
    extra: list[tuple[str, CodesFile]] = []
    for path in sorted(data_dir.glob(EXTRA_CODES)):
        try:
            more, node = load_model(path, CodesFile)
        except KnowledgeError as exc:
            problems.extend(exc.problems)
            continue
        key = f"codes:{path.name}"
        nodes[key] = node
        extra.append((key, more))
    if problems:
        raise KnowledgeError(problems)
    codes_file, origin = _merge_codes(loaded["codes"], extra)  # type: ignore[arg-type]
    pairs_file: PairsFile = loaded["pairs"]  # type: ignore[assignment]
    docs_file: DocumentationFile = loaded["documentation"]  # type: ignore[assignment]
    mods_file: ModifiersFile = loaded["modifiers"]  # type: ignore[assignment]
    sources_file: SourcesFile = loaded["sources"]  # type: ignore[assignment]
    vocab_file: VocabularyFile = loaded["vocabulary"]  # type: ignore[assignment]
    problems = _cross_check(
        codes_file, pairs_file, docs_file, mods_file, sources_file, nodes, origin
    )
    problems += check_vocabulary(vocab_file, codes_file, nodes, origin)
    if problems:
        raise KnowledgeError(problems)
    catalog = Catalog(
        release=sources_file.release,
        as_of=sources_file.as_of,
        codes={c.code: c for c in codes_file.codes},
        families={f.id: f for f in codes_file.families},
        groups={g.id: g for g in codes_file.groups},
        sources={s.key: s for s in sources_file.sources},
        rules={r.id: r for r in pairs_file.rules},
        element_sets={s.id: s for s in docs_file.sets},
        modifiers={m.modifier: m for m in mods_file.modifiers},
        misconceptions=mods_file.misconceptions,
        vocabulary=vocab_file,
    )
    catalog._index(cms)
    return catalog


_CACHE: dict[tuple[Path, Path | None], Catalog] = {}
_LOCK = threading.Lock()


def load_catalog(data_dir: Path = DATA_DIR, cms_dir: Path | None = None) -> Catalog:
    """The catalog for a data folder (and optional CMS store), built once per process."""
    key = (data_dir, cms_dir)
    with _LOCK:
        cat = _CACHE.get(key)
        if cat is None:
            store = None
            if cms_dir is not None:
                from knowledge.cms import load_store

                store = load_store(cms_dir)
            cat = build_catalog(data_dir, store)
            _CACHE[key] = cat
        return cat


def clear_cache() -> None:
    """Forget built catalogs (after an import or a data edit)."""
    with _LOCK:
        _CACHE.clear()

