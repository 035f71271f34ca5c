"""Question suites: pydantic models for the YAML files and a loader whose errors say where.

A suite file holds cases of two kinds, told apart by ``type`` (``question`` by default):

- ``question``: a question (or a conversation whose last turn is scored) answered by the
  full pipeline, with the codes it must and must not recommend, the rules that must fire
  and the sources that must be cited;
- ``check``: a claim line (``20610 76942``, ``93971-50``) and/or a drafted text run through
  the deterministic checker, with the verdict and findings it must produce.

A question case may carry ``variants``: the same question reworded (``kind``: clinician,
coder, distractor, note or abbreviation). A variant shares every expectation of its case;
for a conversation it replaces the last turn. Each variant runs as a case of its own,
``<case id>~v<n>`` (:meth:`QuestionCase.variant_cases`), scored apart from the originals.
A case tagged ``set: holdout`` (id starting ``ho-``) is a fresh question kept out of rule
writing; it takes no variants and is scored apart as well.

A misspelled key or a bad value fails the whole load with ``file:line: case <id>: field:
message`` for every problem, like the knowledge data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from knowledge.codes import CODE
from knowledge.loader import KnowledgeError, line_of_node, read_yaml

if TYPE_CHECKING:
    from knowledge.catalog import Catalog

CODE_PATTERN = rf"^(?:{CODE})$"
RULE_PATTERN = r"^[a-z_]+(?:\.[a-z0-9_]+)?$"
_CODE_RE = re.compile(CODE_PATTERN)
# Families that are not catalog families but still group cases in the report.
EXTRA_FAMILIES = frozenset({"out_of_scope", "general"})

UserType = Literal["clinician", "coder"]
CaseKind = Literal["coding", "follow_up", "out_of_scope", "web_error", "lookup", "check"]
Verdict = Literal["pass", "review", "fail"]
CodeStatusName = Literal["verified", "corrected", "removed", "not_verified"]
VariantKind = Literal["clinician", "coder", "distractor", "note", "abbreviation"]
VARIANT_KINDS: tuple[str, ...] = get_args(VariantKind)
CaseSet = Literal["public", "holdout"]
VariantMode = Literal["all", "none", "only"]
VARIANT_MODES: tuple[str, ...] = get_args(VariantMode)
HOLDOUT_PREFIX = "ho-"
ORIGINAL = "original"  # the 'variant' tag value of a case as written


class SuiteError(Exception):
    """A suite file is broken; ``problems`` lists each one with file, line, case and field."""

    retryable = False

    def __init__(self, problems: list[str]) -> None:
        """Keep the problem list; the message shows them all and what to do."""
        self.problems = problems
        super().__init__(
            "suite file(s) invalid:\n  " + "\n  ".join(problems) + "\nFix the case(s) above "
            "and run the evaluation again."
        )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _norm_code(value: Any) -> str:
    # YAML reads 20610 as an int; codes are strings everywhere else.
    return str(value).strip().lstrip("+").upper()


class Tags(_Strict):
    """How a case is grouped in the report."""

    family: str = Field(description="Catalog family id, or out_of_scope / general.")
    user: UserType = Field(description="Who is asking: clinician or coder phrasing.")
    kind: CaseKind = Field(description="What the case exercises.")
    set: CaseSet = Field(
        "public",
        description="public: the suites the rules are written against; holdout: fresh "
        "questions kept out of rule writing (their ids start with 'ho-').",
    )

    def values(self) -> dict[str, str]:
        """Tag name -> value."""
        return {"family": self.family, "user": self.user, "kind": self.kind, "set": self.set}


class _Case(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="Unique case id.")
    tags: Tags = Field(description="Family, user type and kind.")
    note: str | None = Field(None, description="Why the expectation is what it is.")

    @model_validator(mode="after")
    def _holdout_named(self) -> _Case:
        holdout = self.tags.set == "holdout"
        if holdout != self.id.startswith(HOLDOUT_PREFIX):
            raise ValueError(
                f"a hold-out case (tags.set: holdout) and only such a case has an id starting "
                f"'{HOLDOUT_PREFIX}'"
            )
        return self

    def tag_values(self) -> dict[str, str]:
        """The tags a report groups by and ``--tag`` selects on, 'variant' included."""
        return self.tags.values() | {"variant": ORIGINAL}

    def _named(self, ids: set[str]) -> bool:
        return self.id in ids

    def matches(self, tag: str) -> bool:
        """True when ``tag`` ('obstetric', 'kind=check', 'coder', 'variant=note') names one of
        the tags, or 'id=a,b' names this case's id (a variant is named by its own id or by
        its case's)."""
        values = self.tag_values()
        if "=" in tag:
            key, _, value = tag.partition("=")
            if key.strip() == "id":
                return self._named({v.strip() for v in value.split(",")})
            return values.get(key.strip()) == value.strip()
        return tag in values.values()


class Variant(_Strict):
    """The case's question reworded; every expectation of the case holds for it unchanged."""

    kind: VariantKind = Field(
        description="clinician wording, coder shorthand, a negated or deferred distractor, "
        "a pasted note excerpt, or an abbreviation-heavy form."
    )
    question: str = Field(
        min_length=2,
        description="The reworded question; for a conversation case it replaces the last turn.",
    )


class QuestionCase(_Case):
    """A question (or conversation) answered by the full pipeline."""

    type: Literal["question"] = Field("question", description="Case kind.")
    question: str | None = Field(None, min_length=2, description="The question asked.")
    conversation: tuple[str, ...] | None = Field(
        None, min_length=2, description="User turns in order; the last one is scored."
    )
    expect_codes: tuple[str, ...] = Field(
        (), description="Codes that must be recommended and shown verified or corrected."
    )
    allow_codes: tuple[str, ...] = Field(
        (), description="Codes that may also appear without counting against precision."
    )
    forbid_codes: tuple[str, ...] = Field(
        (), description="Codes that must not be recommended."
    )
    expect_no_codes: bool = Field(False, description="No code at all may be shown.")
    expect_findings: tuple[str, ...] = Field(
        (), description="Rule ids (or rule families) that must fire."
    )
    expect_sources: tuple[str, ...] = Field((), description="Source keys that must be cited.")
    max_latency_ms: int | None = Field(None, gt=0, description="Latency budget for the answer.")
    variants: tuple[Variant, ...] = Field(
        (), description="The question reworded; each runs as its own case, scored apart."
    )

    _codes = field_validator("expect_codes", "allow_codes", "forbid_codes", mode="before")(
        lambda v: tuple(_norm_code(c) for c in v) if isinstance(v, list | tuple) else v
    )

    @field_validator("expect_codes", "allow_codes", "forbid_codes")
    @classmethod
    def _code_shape(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [c for c in v if not _CODE_RE.match(c)]
        if bad:
            raise ValueError(f"not a code: {', '.join(bad)} (five characters, e.g. 76942)")
        return v

    @field_validator("expect_findings")
    @classmethod
    def _rule_shape(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [r for r in v if not re.match(RULE_PATTERN, r)]
        if bad:
            raise ValueError(f"not a rule id: {', '.join(bad)} (e.g. pairs.bundled)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> QuestionCase:
        if (self.question is None) == (self.conversation is None):
            raise ValueError("give exactly one of question or conversation")
        both = set(self.expect_codes) & set(self.forbid_codes)
        if both:
            raise ValueError(f"codes both expected and forbidden: {', '.join(sorted(both))}")
        if self.expect_no_codes and self.expect_codes:
            raise ValueError("expect_no_codes contradicts expect_codes")
        if self.variants and self.tags.set == "holdout":
            raise ValueError("a hold-out case takes no variants (it is scored as written)")
        seen = {_plain(self.turns[-1])}
        for i, v in enumerate(self.variants, 1):
            if _plain(v.question) in seen:
                raise ValueError(
                    f"variant {i} repeats the question or an earlier variant; a variant "
                    "rewords it"
                )
            seen.add(_plain(v.question))
        return self

    def variant_cases(self) -> list[VariantCase]:
        """One case per variant: the same expectations, the variant's question as the (last)
        turn, id ``<id>~v<n>``."""
        keep = self.model_dump(exclude={"id", "question", "conversation", "variants"})
        out = []
        for i, v in enumerate(self.variants, 1):
            turns = (
                {"conversation": (*self.conversation[:-1], v.question)}
                if self.conversation is not None
                else {"question": v.question}
            )
            out.append(VariantCase(
                **keep, **turns, id=f"{self.id}~v{i}", variant_of=self.id,
                variant_kind=v.kind, origin=self,
            ))
        return out

    @property
    def turns(self) -> tuple[str, ...]:
        """The user turns in order (one for a plain question)."""
        return self.conversation if self.conversation is not None else (self.question or "",)

    @property
    def earlier(self) -> str:
        """The turn the scored one follows up, as the pipeline reads it ('' if it stands alone)."""
        from advisor.pipeline import is_follow_up

        turns = self.turns
        return turns[-2] if len(turns) > 1 and is_follow_up(turns[-1]) else ""


def _plain(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


class VariantCase(QuestionCase):
    """A variant run as a case of its own (built by :meth:`QuestionCase.variant_cases`)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*~v[0-9]+$", description="<case id>~v<n>.")
    variant_of: str = Field(description="Id of the case it rewords.")
    variant_kind: VariantKind = Field(description="How it rewords the case.")
    origin: QuestionCase = Field(exclude=True, repr=False, description="The case it rewords.")

    def tag_values(self) -> dict[str, str]:
        """The case's tags with 'variant' set to this variant's kind."""
        return self.tags.values() | {"variant": self.variant_kind}

    def _named(self, ids: set[str]) -> bool:
        return self.id in ids or self.variant_of in ids


def origin(case: QuestionCase | CheckCase) -> QuestionCase | CheckCase:
    """The case as written in its suite file (a variant's case; any other case itself)."""
    return case.origin if isinstance(case, VariantCase) else case


class CheckCase(_Case):
    """A claim line and/or drafted text run through the deterministic checker."""

    type: Literal["check"] = Field(description="Case kind.")
    codes: str = Field("", description="Claim as keyed: CODE[-MOD][xUNITS] separated by spaces.")
    text: str = Field("", description="A drafted answer to scrub.")
    expect_verdict: Verdict = Field(description="Overall verdict: pass, review or fail.")
    expect_findings: tuple[str, ...] = Field((), description="Rule ids that must fire.")
    forbid_findings: tuple[str, ...] = Field((), description="Rule ids that must not fire.")
    expect_status: dict[str, CodeStatusName] = Field(
        default_factory=dict, description="Code -> verdict it must end with."
    )

    _status_keys = field_validator("expect_status", mode="before")(
        lambda v: {_norm_code(k): s for k, s in v.items()} if isinstance(v, dict) else v
    )

    @field_validator("expect_findings", "forbid_findings")
    @classmethod
    def _rule_shape(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [r for r in v if not re.match(RULE_PATTERN, r)]
        if bad:
            raise ValueError(f"not a rule id: {', '.join(bad)} (e.g. pairs.bundled)")
        return v

    @model_validator(mode="after")
    def _something(self) -> CheckCase:
        if not self.codes.strip() and not self.text.strip():
            raise ValueError("give codes or text to check")
        return self


def _case_kind(data: Any) -> str:
    if isinstance(data, dict):
        return str(data.get("type", "question"))
    return str(getattr(data, "type", "question"))


Case = Annotated[
    Annotated[QuestionCase, Tag("question")] | Annotated[CheckCase, Tag("check")],
    Discriminator(_case_kind),
]


class SuiteFile(_Strict):
    """One suite file."""

    suite: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Suite name.")
    description: str = Field("", description="What the suite covers.")
    cases: tuple[Case, ...] = Field(min_length=1, description="The cases.")


class Suite(BaseModel):
    """A loaded suite with the file it came from."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str
    path: Path
    cases: list[QuestionCase | CheckCase]


# ------------------------------------------------------------------------------- loading

def line_for(node: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """1-based line of a pydantic error location in a YAML node tree (deepest node found)."""
    return line_of_node(node, tuple(loc))


def _strip_tag(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    # pydantic puts the union tag after the case index; 'question' is also a field name,
    # so it must go before the location is followed through the YAML nodes.
    if len(loc) >= 3 and loc[0] == "cases" and loc[2] in ("question", "check"):
        return loc[:2] + loc[3:]
    return loc


def _describe(loc: Sequence[int | str], data: Any) -> tuple[str, str]:
    """(case label, field path) of an error location inside a suite file."""
    parts = list(loc)
    if len(parts) >= 2 and parts[0] == "cases" and isinstance(parts[1], int):
        index = parts[1]
        raw = data.get("cases") if isinstance(data, dict) else None
        ident = None
        if isinstance(raw, list) and index < len(raw) and isinstance(raw[index], dict):
            ident = raw[index].get("id")
        label = f"case {ident}" if ident else f"case #{index + 1}"
        return label, ".".join(str(p) for p in parts[2:]) or "(case)"
    return "suite", ".".join(str(p) for p in parts) or "(top level)"


def _expand(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files.extend(sorted([*p.glob("*.yaml"), *p.glob("*.yml")]))
        else:
            files.append(p)
    return list(dict.fromkeys(files))


def load_suite_file(path: Path) -> Suite:
    """Read and validate one suite file; raises SuiteError naming file, line, case, field."""
    try:
        data, located = read_yaml(path)
    except KnowledgeError as exc:
        raise SuiteError(exc.problems) from exc
    try:
        parsed = SuiteFile.model_validate(data if data is not None else {})
    except ValidationError as exc:
        node = located.node
        problems = []
        for err in exc.errors():
            loc = _strip_tag(tuple(err["loc"]))
            line = line_for(node, loc)
            label, field = _describe(loc, data)
            where = f"{path}:{line}" if line else str(path)
            problems.append(f"{where}: {label}: {field}: {err['msg']}")
        raise SuiteError(problems) from None
    return Suite(name=parsed.suite, path=path, cases=list(parsed.cases))


def _cross_check(suites: list[Suite], catalog: Catalog) -> list[str]:
    """Problems no single file can see: duplicate ids, unknown families, codes and sources."""
    problems: list[str] = []
    seen: dict[str, Path] = {}
    families = set(catalog.families) | EXTRA_FAMILIES
    source_keys = set(catalog.sources)
    for suite in suites:
        for case in suite.cases:
            where = f"{suite.path}: case {case.id}"
            if case.id in seen:
                problems.append(f"{where}: id: duplicate of a case in {seen[case.id]}")
            seen.setdefault(case.id, suite.path)
            if case.tags.family not in families:
                problems.append(f"{where}: tags.family: unknown family {case.tags.family!r}")
            if isinstance(case, QuestionCase):
                for name in ("expect_codes", "allow_codes"):
                    for code in getattr(case, name):
                        if catalog.status(code) != "active":
                            problems.append(
                                f"{where}: {name}: {code} is {catalog.status(code)} in the "
                                "catalog; an expected code must be an active catalog code"
                            )
                for key in case.expect_sources:
                    if key not in source_keys:
                        problems.append(f"{where}: expect_sources: unknown source key {key!r}")
    return problems


def load_suites(paths: Iterable[str | Path], catalog: Catalog | None = None) -> list[Suite]:
    """Load suite files (folders mean every *.yaml in them) and cross-check them.

    Every problem of every file is collected before raising one SuiteError.
    """
    files = _expand(paths)
    if not files:
        raise SuiteError(["no suite files given (a folder must hold *.yaml files)"])
    problems: list[str] = []
    suites: list[Suite] = []
    for path in files:
        if not path.exists():
            problems.append(f"{path}: no such file or folder")
            continue
        try:
            suites.append(load_suite_file(path))
        except SuiteError as exc:
            problems.extend(exc.problems)
    if catalog is not None and suites:
        problems.extend(_cross_check(suites, catalog))
    if problems:
        raise SuiteError(problems)
    return suites


def select_cases(
    suites: Sequence[Suite],
    tags: Sequence[str] = (),
    limit: int | None = None,
    variants: VariantMode = "all",
    sample: int | None = None,
) -> list[QuestionCase | CheckCase]:
    """Cases of all suites in order, then their variants in the same order, kept when they
    match every tag, thinned to ``sample`` cases spread evenly over them (every suite and
    variant kind keeps its share; the same cases each time), cut to ``limit``.

    ``variants``: 'all' runs the cases as written and their variants, 'none' only the cases
    as written, 'only' only the variants. Originals come first so that a run cut short (or
    read with ``--partial``) has the figures comparable with earlier runs soonest.
    """
    if variants not in VARIANT_MODES:
        raise ValueError(f"variants must be one of {', '.join(VARIANT_MODES)}, not {variants!r}")
    written = [c for s in suites for c in s.cases]
    pool: list[QuestionCase | CheckCase] = []
    if variants != "only":
        pool.extend(written)
    if variants != "none":
        pool.extend(v for c in written if isinstance(c, QuestionCase) for v in c.variant_cases())
    cases = [c for c in pool if all(c.matches(t) for t in tags)]
    if sample is not None and sample < len(cases):
        step = len(cases) / sample
        cases = [cases[int(i * step)] for i in range(sample)]
    return cases[:limit] if limit is not None else cases
