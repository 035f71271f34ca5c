"""Rule ids are declared once (guardrails/registry.py), and every declared id is emitted.

Fails when a module writes an undeclared id, when a finding carries an undeclared id or a
severity or action its declaration does not allow, and when a declared id is emitted by
neither the golden corpus (every suite question and claim line) nor an example below.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeRetriever, ScriptedChatModel, passage
from helpers import REPO

from advisor.llm import ModelTimeout, ModelUnavailable
from advisor.pipeline import Advisor
from advisor.settings import Settings
from guardrails import check, check_claim
from guardrails.fit import QUESTION_RULES
from guardrails.registry import DATA_FAMILIES, SPECS, RuleId, is_declared, question_rules
from guardrails.repair import check_and_repair
from guardrails.report import Draft, DraftCode
from knowledge.catalog import load_catalog

CAT = load_catalog()
EMITTERS = {"Finding", "note", "_replace"}


def _ids_written() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Rule ids written as literals, and prefixes of computed ids, at each emitting call."""
    literal: dict[str, list[str]] = {}
    computed: dict[str, list[str]] = {}
    for path in [*Path(REPO, "guardrails").rglob("*.py"), *Path(REPO, "advisor").rglob("*.py"),
                 Path(REPO, "app.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name not in EMITTERS:
                continue
            where = f"{path.relative_to(REPO)}:{node.lineno}"
            first = node.args[0]
            options = [first.body, first.orelse] if isinstance(first, ast.IfExp) else [first]
            for arg in options:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    literal.setdefault(arg.value, []).append(where)
                elif isinstance(arg, ast.JoinedStr):
                    head = arg.values[0]
                    prefix = head.value if isinstance(head, ast.Constant) else ""
                    computed.setdefault(str(prefix), []).append(where)
    return literal, computed


def test_every_rule_id_a_module_writes_is_declared() -> None:
    literal, computed = _ids_written()
    assert literal, "the scan found no rule ids: is EMITTERS still right?"
    assert {r: w for r, w in literal.items() if not is_declared(r)} == {}
    # Computed ids only for the families the data declares (misconception.<id>).
    assert {p: w for p, w in computed.items()
            if p.rstrip(".") not in DATA_FAMILIES} == {}


def test_every_declared_id_is_used_by_some_module() -> None:
    literal, _ = _ids_written()
    source = "\n".join(p.read_text(encoding="utf-8") for p in [
        *Path(REPO, "guardrails").rglob("*.py"), *Path(REPO, "advisor").rglob("*.py")]
        if p.name != "registry.py")
    unused = [r.value for r in RuleId if f"RuleId.{r.name}" not in source and r.value not in literal]
    assert unused == []


def test_question_rules_derive_from_the_registry() -> None:
    assert QUESTION_RULES == question_rules()
    assert "fit.site" in QUESTION_RULES and "pairs.bundled" not in QUESTION_RULES
    assert all(SPECS[RuleId(r)].family == "fit" for r in QUESTION_RULES)


def test_the_golden_corpus_emits_only_declared_ids_as_declared(golden_run) -> None:
    seen = golden_run.observed.seen
    assert {r for r, _, _ in seen if not is_declared(r)} == set()
    wrong = sorted(
        (r, s.value, a.value) for r, s, a in seen
        if r in SPECS and (s not in SPECS[RuleId(r)].severities
                           or a not in SPECS[RuleId(r)].on_fail)
    )
    assert wrong == []


# -- examples for the ids the golden corpus does not reach ---------------------------------

def _asked(question: str, *lines: str, history: str = "") -> Draft:
    codes = check_claim(list(lines), CAT).first.draft.codes
    return Draft(codes=codes, context=question, history=history)


def _without_pair(a: str, b: str) -> Any:
    """The catalog with one pair edit missing (data that names the included guidance only)."""
    cat = copy.copy(CAT)
    real = CAT.pair
    cat.pair = lambda x, y: None if {x, y} == {a, b} else real(x, y)  # type: ignore[method-assign]
    return cat


def _ask(replies: list[Any], codes: tuple[str, ...], question: str, tmp: Path) -> None:
    passages = [passage("p1", "Vascular access guidance 76937; limited TTE 93308.",
                        ["76937", "93308"])]
    model = ScriptedChatModel(replies=list(replies))
    settings = Settings(data_dir=tmp, backend="embedded", llm_timeout_s=5)
    Advisor(settings, catalog=CAT, retriever=FakeRetriever(CAT, codes, passages),
            model=model).ask(question)


def _line(code: str) -> dict[str, Any]:
    return {"code": code, "units": 1, "modifiers": [], "reason": "r", "citations": []}


_ADD_ON_ALONE = {"codes": [{"code": "76937", "units": 1, "modifiers": [], "reason": "r",
                            "citations": []}], "answer": "Report 76937."}
_ECHO = {"codes": [{"code": "93308", "units": 1, "modifiers": [], "reason": "r",
                    "citations": ["p1"]}], "answer": "Report 93308 as a complete echo."}
_VASCULAR = "Ultrasound guidance for vascular access, what do I bill?"

EXAMPLES: dict[str, Callable[[Path], object]] = {
    "existence.malformed": lambda _: check(Draft(codes=(DraftCode("7694"),)), CAT),
    # the question names the guidance the access code leaves out (check_and_repair adds it)
    "omission.implied": lambda _: check_and_repair(_asked(
        "Central line placement with ultrasound guidance", "36556"), CAT),
    # the question counts twins: the additional-gestation add-on beside the complete exam
    "omission.count": lambda _: check_and_repair(_asked(
        "Twin pregnancy at 22 weeks, standard complete exam of both fetuses.", "76805"), CAT),
    # guidance drafted alone: the one procedure the question describes is added
    "omission.procedure": lambda _: check_and_repair(_asked(
        "Ultrasound guidance for needle biopsies of liver lesions - which codes?", "76942"), CAT),
    # fluoroscopy for a joint injection: the add-on guidance code beside 20610
    "omission.guidance": lambda _: check_and_repair(_asked(
        "Knee injection under fluoroscopy.", "20610"), CAT),
    # the question never names the catheter placement: its add-on is not verified with it
    "add_on.primary_not_verified": lambda _: check_and_repair(_asked(
        "IVUS of one iliac vessel, which codes?", "36200", "37252"), CAT),
    # labelled option lines: alternatives, not a claim of both
    "pairs.alternatives": lambda _: check("Limited: 93308.\nComplete: 93306.", CAT),
    # the checker alone only suggests the add-on beside its primary
    "descriptor.guidance_addon": lambda _: check(Draft(
        codes=(DraftCode("36556"),),
        context="Central line in the internal jugular with ultrasound guidance"), CAT),
    "descriptor.guidance": lambda _: check(
        "Bill 20611; 20611 does not include imaging guidance.", CAT),
    "pairs.modifier_unsupported": lambda _: check_and_repair(_asked(
        "and if both legs are scanned completely?", "93970-59", "93971-59",
        history="venous duplex for dvt?"), CAT),
    "pairs.guidance_included": lambda _: check_claim(
        ["19083", "76942"], _without_pair("19083", "76942")),
    "warned.unsupported": lambda _: check("Report 76705; do not add 93306.", CAT),
    "units.both_sides": lambda _: check_and_repair(_asked(
        "and if both knees were injected?", "20611x2",
        history="ultrasound-guided knee injection"), CAT),
    "units.uncounted": lambda _: check_and_repair(_asked(
        "central line placement with ultrasound guidance, patient 40", "36556x3", "76937"), CAT),
    "modifiers.unasked": lambda _: check_and_repair(_asked(
        "ultrasound-guided knee injection", "20611-50"), CAT),
    "modifiers.distinct_on_indicator_0": lambda _: check_claim(["20611", "76942-59"], CAT),
    "pipeline.reasked": lambda tmp: _ask([_ADD_ON_ALONE] * 2, ("76937", "36556"), _VASCULAR,
                                         tmp),
    "pipeline.dropped_after_reask": lambda tmp: _ask([_ADD_ON_ALONE] * 2, ("76937", "36556"),
                                                     _VASCULAR, tmp),
    "pipeline.reask_failed": lambda tmp: _ask([_ADD_ON_ALONE, ModelTimeout("too slow")],
                                              ("76937", "36556"), _VASCULAR, tmp),
    "pipeline.kept_passing": lambda tmp: _ask(
        [{"codes": [_line("32550"), _line("76937")], "answer": "Report 32550 and 76937."},
         {"codes": [_line("75989")], "answer": "Report 75989."}], ("32550", "76937", "75989"),
        "Tunneled IPC w/ cuff (PleurX) under US - which guidance code?", tmp),
    "pipeline.reask_discarded": lambda tmp: _ask(
        [_ECHO, {"codes": [], "answer": "No codes fit."}], ("93308",),
        "Limited follow-up TTE, which code?", tmp),
    "pipeline.prose_withheld": lambda tmp: _ask(
        [_ECHO, {"codes": [], "answer": "No codes fit."}], ("93308",),
        "Limited follow-up TTE, which code?", tmp),
    "pipeline.model_unavailable": lambda tmp: _ask([ModelUnavailable("no model file")],
                                                   ("76937",), _VASCULAR, tmp),
    "pipeline.out_of_scope": lambda tmp: _ask([], ("76937",), "Knee MRI without contrast, code?",
                                              tmp),
    "pipeline.language": lambda tmp: _ask([], ("76937",), "Wie rechne ich eine "
                                          "ultraschallgesteuerte Knieinjektion ab?", tmp),
    # two rules that disagree, added for the example (as in tests/unit/test_repair_loop.py)
    "repair.oscillation": lambda _: _oscillating(),
}


def _oscillating() -> object:
    from types import SimpleNamespace

    import guardrails.checker
    from guardrails.report import Finding, Fix, OnFail, Severity

    def swap(ctx: Any) -> Any:
        for code, other in (("76700", "76705"), ("76705", "76700")):
            if code in ctx.codes:
                yield Finding(RuleId.FIT_EXTENT, Severity.ERROR, (code,), f"{other} fits.",
                              fix=Fix(f"Replace {code} with {other}.", remove=(code,),
                                      add=(other,)), on_fail=OnFail.FIX)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(guardrails.checker, "RULE_FAMILIES",
                   (*guardrails.checker.RULE_FAMILIES, SimpleNamespace(check=swap)))
        return check_claim(["76700"], CAT)


@pytest.mark.parametrize("rule", sorted(EXAMPLES))
def test_each_example_emits_its_rule_as_declared(rule: str, observe_findings, tmp_path) -> None:
    EXAMPLES[rule](tmp_path)
    assert rule in observe_findings.rules()
    spec = SPECS[RuleId(rule)]
    for r, severity, action in observe_findings.seen:
        if r == rule:
            assert severity in spec.severities and action in spec.on_fail, (severity, action)


def test_every_declared_id_is_emitted_by_the_corpus_or_an_example(golden_run) -> None:
    assert set(EXAMPLES) <= {r.value for r in RuleId}
    never = {r.value for r in RuleId} - golden_run.observed.rules() - set(EXAMPLES)
    assert never == set()
