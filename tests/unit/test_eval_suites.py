"""The public suites: every check case against the real checker; a question subset through
the real pipeline with a scripted model and a scripted retriever (deterministic, offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fakes import ScriptedChatModel
from langchain_core.messages import BaseMessage

from advisor.evaluation.runner import RecordingRetriever, Runner
from advisor.evaluation.suite import CheckCase, QuestionCase, load_suites
from advisor.pipeline import Advisor
from advisor.prompts import Task
from advisor.retriever import Candidate, Passage, RetrievalResult
from advisor.settings import Settings
from knowledge.catalog import load_catalog

REPO = Path(__file__).resolve().parents[2]
CAT = load_catalog()
SUITES = load_suites([REPO / "suites"], CAT)
CASES = {c.id: c for s in SUITES for c in s.cases}
CHECKS = [c for c in CASES.values() if isinstance(c, CheckCase)]

# Cases whose expectation follows the reference facts while the checker disagrees today.
# strict xfail: when the checker is fixed the test says so and the entry must go.
KNOWN_DISAGREEMENTS: dict[str, str] = {}


def test_suites_have_the_promised_coverage() -> None:
    questions = [c for c in CASES.values() if isinstance(c, QuestionCase)
                 and c.tags.set == "public"]
    assert len(questions) >= 120
    assert len(CHECKS) >= 40
    families = {c.tags.family for c in CASES.values()}
    assert set(CAT.families) <= families
    assert {c.tags.user for c in questions} == {"clinician", "coder"}
    kinds = {c.tags.kind for c in questions}
    assert {"coding", "follow_up", "out_of_scope", "web_error"} <= kinds
    assert sum(c.tags.kind == "web_error" for c in questions) >= 20


# ------------------------------------------------------------ variants and the hold-out set
#
# Variants and hold-out cases measure how the question reading generalizes, so they are kept
# out of the tests below that tie the question rules to the suites' words (expected codes
# pass, forbidden codes are caught, topic words): requiring a variant there would make every
# paraphrase a rule to write, and the hold-out would stop being one. Here they are checked
# for what a suite author controls: enough of them, every kind, no patient details, sources.

WRITTEN = [c for c in CASES.values() if isinstance(c, QuestionCase)]
PUBLIC = [c for c in WRITTEN if c.tags.set == "public"]
HOLDOUT = [c for c in WRITTEN if c.tags.set == "holdout"]
VARIANTS = [v for c in PUBLIC for v in c.variant_cases()]


def test_every_public_question_has_two_variants_and_all_kinds_are_used() -> None:
    from collections import Counter

    from advisor.evaluation.suite import VARIANT_KINDS

    assert [c.id for c in PUBLIC if len(c.variants) < 2] == []
    kinds = Counter(v.variant_kind for v in VARIANTS)
    assert set(kinds) == set(VARIANT_KINDS)
    # Each kind is a real share of the set, so a per-kind figure means something.
    assert min(kinds.values()) >= 40, kinds
    # A conversation's variants reword its last turn only.
    for v in VARIANTS:
        if v.origin.conversation is not None:
            assert v.turns[:-1] == v.origin.turns[:-1]


def test_pasted_notes_carry_no_patient_details() -> None:
    # Suite files are public: a pasted note excerpt is made up, with nothing the scrubber
    # would mask (dates, phone numbers, MRNs, emails, addresses). Names are left out of the
    # check: the name model calls 'Achilles' or 'Left' a person.
    from advisor.privacy import get_scrubber

    scrubber = get_scrubber()
    texts = [v.turns[-1] for v in VARIANTS if v.variant_kind == "note"]
    texts += [t for c in HOLDOUT for t in c.turns]
    found = {t: [s.entity for s in scrubber.analyze(t) if s.entity != "PERSON"] for t in texts}
    assert {t: e for t, e in found.items() if e} == {}


def test_the_holdout_set_is_spread_over_the_families_and_cites_its_facts() -> None:
    assert len(HOLDOUT) >= 40
    assert all(c.id.startswith("ho-") and not c.variants for c in HOLDOUT)
    families = {c.tags.family for c in HOLDOUT}
    assert {"abdomen", "obstetric", "pelvis", "vascular", "echo", "joint_injection",
            "soft_tissue_injection", "fna", "vascular_access", "nerve_block", "breast",
            "neck"} <= families
    assert {c.tags.user for c in HOLDOUT} == {"clinician", "coder"}
    keys = set(CAT.sources)
    uncited = [c.id for c in HOLDOUT if not c.note or not any(k in c.note for k in keys)]
    assert uncited == []
    # A LOW-confidence code is never expected verified: the advisor marks it for review.
    low = [f"{c.id}: {code}" for c in HOLDOUT for code in c.expect_codes
           if CAT.codes[code].confidence.value == "low"]
    assert low == []
    # Hold-out questions are fresh: none repeats a public question or variant.
    public_texts = {t.lower() for c in PUBLIC for t in c.turns}
    public_texts |= {v.turns[-1].lower() for v in VARIANTS}
    assert [c.id for c in HOLDOUT if c.turns[-1].lower() in public_texts] == []


@pytest.fixture(scope="module")
def runner() -> Runner:
    r = Runner.__new__(Runner)
    r.catalog = CAT
    return r


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, id=c.id, marks=pytest.mark.xfail(reason=KNOWN_DISAGREEMENTS[c.id],
                                                          strict=True))
        if c.id in KNOWN_DISAGREEMENTS else pytest.param(c, id=c.id)
        for c in CHECKS
    ],
)
def test_check_case_against_the_real_checker(runner: Runner, case: CheckCase) -> None:
    score = runner.run_check(case)
    assert score.passed, score.failures


# --------------------------------------------------------- scripted model and retriever


def scripted_answer(drafts: dict[str, list[dict[str, Any]]], raw: dict[str, list[str]]) -> Any:
    """The scripted model's answer by task and question fragment, never by exact prompt."""

    def answer(task: Task | None, messages: list[BaseMessage]) -> Any:
        text = "\n".join(str(m.content) for m in messages[1:])
        question = text.split("Question:")[-1].strip().splitlines()[0]
        if task is Task.RAW_BASELINE:  # a prose answer
            key = next((k for k in raw if k in question), None)
            codes_ = raw.get(key, []) if key else []
            return f"Report {' and '.join(codes_)}." if codes_ else "I am not sure."
        key = next((k for k in drafts if k in question), None)
        codes = drafts.get(key, []) if key else []
        return {
            "codes": [
                {"code": c["code"], "units": c.get("units", 1),
                 "modifiers": c.get("modifiers", []), "reason": "scripted",
                 "citations": ["P1"]}
                for c in codes
            ],
            "answer": "Scripted answer.",
        }

    return answer


class ScriptedRetriever:
    """Offers the codes a question's script mentions as candidates, with one passage."""

    def __init__(self, offers: dict[str, list[str]]) -> None:
        self.offers = offers

    def search(self, query: str, k: int | None = None) -> RetrievalResult:
        codes: list[str] = []
        for key, offered in self.offers.items():
            if key in query:
                codes.extend(offered)
        passage = Passage(id="pid-" + str(abs(hash(query)) % 10_000), text="Guidance text.",
                          source="guidelines/x.md", title="T", section="S", score=1.0,
                          source_keys=["AMA_CPT"], kind="guideline")
        cands = [Candidate(code=c, label=CAT.codes[c].label, why="scripted", score=1.0)
                 for c in dict.fromkeys(codes)]
        return RetrievalResult(query=query, passages=[passage], candidates=cands)


# question fragment -> the draft the scripted model gives (often the wrong one on purpose)
DRAFTS: dict[str, list[dict[str, Any]]] = {
    "Do I bill 20610 plus 76942": [{"code": "20610"}, {"code": "76942"}],
    "FNA of a thyroid nodule, one lesion": [{"code": "10005"}, {"code": "76942"}],
    "transthoracic echo with spectral": [{"code": "93306"}, {"code": "93320"},
                                         {"code": "93325"}],
    "do I add modifier 50": [{"code": "93970", "modifiers": ["50"]}],
    "Non-tunneled internal jugular": [{"code": "36556"}, {"code": "76937"}],
    "Full abdominal ultrasound": [{"code": "76700"}],
    "11 weeks for twins": [{"code": "76801"}, {"code": "76802"}],
    "Venous duplex of one leg": [{"code": "93971"}],
    "What about both legs": [{"code": "93970"}],
    "Ultrasound-guided paracentesis": [{"code": "49083"}, {"code": "76942"}],
}
RAW = {
    "Do I bill 20610 plus 76942": ["20610", "76942"],
    "transthoracic echo with spectral": ["93306", "93320", "93325"],
    "Full abdominal ultrasound": ["76705"],
}
SUBSET = [
    "web-01-knee-20610-76942", "pr-fna-thyroid", "cv-tte-complete", "cv-dvt-bilateral",
    "pr-ij-cvc", "dx-abdomen-complete", "dx-ob-twins-first", "conv-dvt-then-both",
    "pr-paracentesis-us", "oos-mri-knee", "oos-ct-abdomen",
]


@pytest.fixture(scope="module")
def scripted_run(tmp_path_factory: pytest.TempPathFactory):
    offers = {k: [c["code"] for c in v] + ["20611", "93970"] for k, v in DRAFTS.items()}
    model = ScriptedChatModel(default=scripted_answer(DRAFTS, RAW))
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), backend="none")
    advisor = Advisor(settings, catalog=CAT, retriever=RecordingRetriever(
        ScriptedRetriever(offers)), model=model)
    runner = Runner(advisor, baseline="raw")
    cases = [CASES[i] for i in SUBSET]
    run = runner.run(SUITES, cases)
    return run, model


def test_question_subset_through_the_real_pipeline(scripted_run) -> None:
    run, _ = scripted_run
    failed = {r.id: r.system.failures for r in run.cases if not r.system.passed}
    assert failed == {}
    s = run.summary.system
    assert s.cases == len(SUBSET)
    assert s.exact_code_set == 1.0
    assert s.forbidden_leak_rate == 0.0
    assert s.unflagged_invalid_rate == 0.0
    assert s.citation_validity == 1.0


def test_baseline_is_scored_the_same_way_and_sees_only_the_question(scripted_run) -> None:
    run, model = scripted_run
    base = {r.id: r.baseline for r in run.cases}
    assert base["web-01-knee-20610-76942"].leaked == ["20610", "76942"]
    assert set(base["web-01-knee-20610-76942"].unflagged_invalid) == {"20610", "76942"}
    assert base["dx-abdomen-complete"].leaked == ["76705"]
    summary = run.summary
    assert summary.baseline is not None
    assert summary.baseline.forbidden_leak_rate > summary.system.forbidden_leak_rate
    raw_prompts = model.prompts(Task.RAW_BASELINE)
    assert len(raw_prompts) == len(SUBSET)
    assert not any("Candidate codes" in t or "Passages" in t for t in raw_prompts)
    drafts = model.prompts(Task.DRAFT)
    assert drafts
    assert all("Candidate codes:" in t for t in drafts)
    # Out-of-scope questions never reach the drafting model.
    assert not any("MRI of the knee" in t for t in drafts)


# -- every question case's codes against the checker, with the case's own question ------------
# The public cases as written only: variants and hold-out cases are not rules to satisfy.

QUESTIONS = PUBLIC


def _judged(case: QuestionCase, codes: list[str]) -> dict[str, str]:
    from guardrails.repair import check_and_repair
    from guardrails.report import Draft, DraftCode

    draft = Draft(codes=tuple(DraftCode(c) for c in codes), context=case.turns[-1],
                  history=case.earlier)
    return {v.code: v.status.value for v in check_and_repair(draft, CAT).verdicts}


@pytest.mark.parametrize("case", [c for c in QUESTIONS if c.expect_codes], ids=lambda c: c.id)
def test_the_expected_codes_pass_the_checker_for_their_question(case: QuestionCase) -> None:
    # A right answer drafted exactly must never be removed or flagged by a question rule.
    judged = _judged(case, list(case.expect_codes))
    assert {c: judged.get(c) for c in case.expect_codes} == {
        c: judged[c] if judged.get(c) in ("verified", "corrected") else "verified or corrected"
        for c in case.expect_codes
    }


# A forbidden code the checker cannot rule out from the question's words alone; the pipeline
# relies on the model and the candidate list there.
FORBIDDEN_NOT_CAUGHT = {
    ("conv-cvc-then-picc", "36569"): "the follow-up names no imaging; only the first turn does",
}


@pytest.mark.parametrize(
    ("case", "code"),
    [(c, f) for c in QUESTIONS for f in c.forbid_codes if CAT.get(f) is not None
     and (c.id, f) not in FORBIDDEN_NOT_CAUGHT],
    ids=lambda x: x.id if isinstance(x, QuestionCase) else x,
)
def test_a_forbidden_code_beside_the_right_ones_does_not_pass(case: QuestionCase,
                                                              code: str) -> None:
    judged = _judged(case, [*case.expect_codes, code])
    assert judged.get(code) not in ("verified", "corrected"), judged
