"""The drafting pipeline with a scripted chat model and a fake retriever (no model, no index).

Each test reads like a script: the user asks, the model drafts what the script says, the
advisor answers; assert the verified codes, the findings and how many model calls were made.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from fakes import FakeRetriever, ScriptedChatModel, passage

from advisor.compose import Composer
from advisor.llm import ModelTimeout, ModelUnavailable
from advisor.pipeline import Advisor, Answer, parse_code_query
from advisor.prompts import PromptContext, Task, draft_messages, task_of
from advisor.retriever import Candidate, Passage, RetrievalResult
from advisor.settings import Settings
from advisor.streaming import DraftRenderer
from knowledge.catalog import load_catalog


class FailingRetriever:
    def search(self, query: str, k: int | None = None) -> RetrievalResult:
        raise RuntimeError("there is no index yet: run `advisor index` first")


KNEE_PASSAGES = [
    passage("aaaa1111", "Joint injections with ultrasound guidance use 20611; do not add 76942.",
            ["20611", "76942"]),
    passage("bbbb2222", "20610 is the injection without ultrasound guidance.", ["20610"]),
    passage("cccc3333", "Needle guidance 76942 is reported with procedures lacking guidance.",
            ["76942"]),
]
KNEE_Q = "What do I bill for an ultrasound-guided knee injection?"


def code(c: str, *cites: str, units: int = 1, mods: Sequence[str] = ()) -> dict[str, Any]:
    return {"code": c, "units": units, "modifiers": list(mods), "reason": f"reason {c}",
            "citations": list(cites)}


@pytest.fixture(scope="module")
def catalog() -> Any:
    return load_catalog()


@pytest.fixture
def settings(tmp_path: Any) -> Settings:
    return Settings(data_dir=tmp_path, backend="embedded", llm_timeout_s=5)


def advisor_with(settings: Settings, catalog: Any, replies: list[Any],
                 codes: Sequence[str] = ("20610", "20611", "76942"),
                 passages: Sequence[Passage] = KNEE_PASSAGES) -> tuple[Advisor, ScriptedChatModel,
                                                                        FakeRetriever]:
    model = ScriptedChatModel(replies=list(replies))
    retriever = FakeRetriever(catalog, codes, passages)
    return Advisor(settings, catalog=catalog, retriever=retriever, model=model), model, retriever


def statuses(answer: Answer) -> dict[str, str]:
    return {c.code: c.status.value for c in answer.codes}


def rules(answer: Answer) -> set[str]:
    return {f["rule"] for f in answer.findings}


# ------------------------------------------------------------------------- the script


def test_guided_knee_injection_pair_is_corrected_to_20611(settings, catalog) -> None:
    draft = {"codes": [code("20610", "P2"), code("76942", "P3")],
             "answer": "Bill 20610 with 76942 for the guidance."}
    adv, model, _ = advisor_with(settings, catalog, [draft])

    answer = adv.ask(KNEE_Q)

    assert statuses(answer) == {"20611": "corrected"}
    assert "pairs.bundled" in rules(answer)
    assert {c.code for c in answer.removed} == {"20610", "76942"}
    assert len(model.calls) == 1
    assert model.calls[0][0] is Task.DRAFT
    # The prose says to bill 20610 + 76942, which the table removed: it is withheld, with
    # why, and the summary shows 20611 first.
    assert "Bill 20610 with 76942" not in answer.answer
    assert ("[statement withheld: it says 20610 and 76942 are billed together; 20610 is "
            "removed; 76942 is removed]") in answer.answer
    assert "prose.contradicts_verdict" in rules(answer)
    assert answer.answer.index("20611") < answer.answer.index("[statement withheld")
    assert answer.path == "draft"
    assert answer.model_calls == 1


def test_prose_code_the_question_rules_out_is_flagged_so(settings, catalog) -> None:
    # Skin marking without real-time guidance: 76937 is never offered, yet the model's prose
    # may still say it can be billed. It is flagged as ruled out, not merely unchecked.
    q = ("I used ultrasound only to mark the skin over the vein before a central line, no "
         "real-time guidance. Can I bill 76937?")
    draft = {"codes": [code("36556")], "answer": "Yes, you can bill 76937 with 36556."}
    adv, _, _ = advisor_with(settings, catalog, [draft], codes=("36556", "76937"))

    answer = adv.ask(q)

    assert statuses(answer) == {"36556": "verified"}
    # "Yes, you can bill 76937 with 36556" is withheld: the question rules 76937 out.
    assert "Yes, you can bill 76937" not in answer.answer
    assert "76937 is ruled out by the question" in answer.answer
    assert "76937 [ruled out by the question]" in Composer.flag_prose(
        "see 76937", [], set(), set(), {"76937"})
    assert "99999 [not checked]" in Composer.flag_prose("see 99999", [], set(), set(), {"76937"})
    assert "99999 [unknown code]" in Composer.flag_prose(
        "see 99999", [], set(), set(), set(), known=catalog.codes.keys())


def test_unknown_code_is_dropped_with_a_finding(settings, catalog) -> None:
    draft = {"codes": [code("20611", "P1"), code("99999")], "answer": "Use 20611 and 99999."}
    adv, _, _ = advisor_with(settings, catalog, [draft])

    answer = adv.ask(KNEE_Q)

    assert statuses(answer) == {"20611": "verified"}
    assert "existence.unknown" in rules(answer)
    assert [c.code for c in answer.removed] == ["99999"]
    # "Use 20611 and 99999." recommends a removed, unknown code: withheld, saying why.
    assert "Use 20611 and 99999" not in answer.answer
    assert ("[statement withheld: it recommends 99999, which the checker removed (an unknown "
            "code, not in the ruleset)]") in answer.answer


def test_reask_happens_once_and_what_still_fails_is_dropped(settings, catalog) -> None:
    # An add-on alone with many possible primaries: the model must say which.
    bad = {"codes": [code("76937")], "answer": "Report 76937."}
    adv, model, _ = advisor_with(settings, catalog, [bad, bad], codes=("76937", "36556"))

    answer = adv.ask("Ultrasound guidance for vascular access, what do I bill?")

    assert [t for t, _ in model.calls] == [Task.DRAFT, Task.REASK]
    assert answer.model_calls == 2
    assert answer.codes == []
    assert [c.code for c in answer.removed] == ["76937"]
    expected = {"pipeline.reasked", "pipeline.dropped_after_reask", "add_on.no_primary"}
    assert expected <= rules(answer)
    # The re-ask told the model what failed.
    assert "add-on" in model.calls[1][1][-1].content


def test_reask_that_fixes_the_draft_is_kept(settings, catalog) -> None:
    bad = {"codes": [code("37252")], "answer": "Report 37252."}
    good = {"codes": [code("36200", "P1"), code("37252", "P1")],
            "answer": "Report the catheter placement 36200 with 37252."}
    adv, model, _ = advisor_with(settings, catalog, [bad, good], codes=("37252", "36200"))

    answer = adv.ask("IVUS of one iliac vessel, which codes?")

    # The add-on alone is re-asked; the answer with its primary is kept, nothing dropped.
    # The question never says a catheter was placed, so 36200 is not verified (silence is
    # not a contradiction), and its add-on with it.
    assert len(model.calls) == 2
    assert statuses(answer) == {"36200": "not_verified", "37252": "not_verified"}
    assert "pipeline.dropped_after_reask" not in rules(answer)
    assert {"fit.unsupported", "add_on.primary_not_verified"} <= rules(answer)


def test_a_reask_that_loses_passing_codes_is_discarded(settings, catalog) -> None:
    # The first draft's codes pass; its prose calls the limited echo "complete" (re-ask).
    first = {"codes": [code("93308", "P1")], "answer": "Report 93308 as a complete echo."}
    worse = {"codes": [], "answer": "No codes fit the criteria."}
    passages = [passage("eeee5555", "A limited or follow-up TTE is 93308.", ["93308"])]
    adv, model, _ = advisor_with(settings, catalog, [first, worse], codes=("93308",),
                                 passages=passages)

    answer = adv.ask("Limited follow-up TTE, which code?")

    assert len(model.calls) == 2
    assert statuses(answer) == {"93308": "verified"}
    assert {"pipeline.reask_discarded", "pipeline.prose_withheld"} <= rules(answer)
    assert "No codes fit" not in answer.answer


IPC_Q = "Tunneled IPC w/ cuff (PleurX) under US - which guidance code?"


def test_a_failing_draft_is_told_the_code_it_left_out_and_keeps_what_passed(settings,
                                                                           catalog) -> None:
    # The vascular guidance add-on drafted for a pleural catheter fails; the reading supports
    # the drainage guidance code, which the draft left out: the model is told once. Its
    # second list loses the catheter code that passed, which is kept.
    first = {"codes": [code("32550"), code("76937")], "answer": "Report 32550 and 76937."}
    second = {"codes": [code("75989")], "answer": "Report 75989 for the guidance."}
    adv, model, _ = advisor_with(settings, catalog, [first, second],
                                 codes=("32550", "76937", "75989"))

    answer = adv.ask(IPC_Q)

    assert [t for t, _ in model.calls] == [Task.DRAFT, Task.REASK]
    assert "75989" in model.calls[1][1][-1].content
    assert statuses(answer) == {"32550": "verified", "75989": "verified"}
    assert [c.code for c in answer.removed] == ["76937"]
    assert {"pipeline.reasked", "pipeline.kept_passing"} <= rules(answer)


def test_a_code_the_second_draft_left_out_says_nothing_contradicted_it(settings,
                                                                     catalog) -> None:
    # The under-5 line code is not verified (the question gives no age), not contradicted;
    # the second draft leaves it out: it is listed as left out, not as ruled out.
    q = "IJ CVC under real-time US, image saved - is 76937 standalone or add-on?"
    first = {"codes": [code("36555"), code("76937")], "answer": "Report 36555 and 76937."}
    second = {"codes": [code("36556"), code("76937")], "answer": "Report 36556 and 76937."}
    adv, _, _ = advisor_with(settings, catalog, [first, second],
                             codes=("36555", "36556", "76937"))

    answer = adv.ask(q)

    assert set(statuses(answer)) == {"36556", "76937"}
    dropped = {c.code: c.reason for c in answer.removed}
    assert dropped["36555"].startswith("left out of the model's second draft; nothing the "
                                       "question says contradicts it (36555")


def test_no_left_out_code_is_offered_when_every_drafted_code_passed(settings, catalog) -> None:
    first = {"codes": [code("32550")], "answer": "Report 32550."}
    adv, model, _ = advisor_with(settings, catalog, [first], codes=("32550", "75989"))

    answer = adv.ask(IPC_Q)

    assert len(model.calls) == 1
    assert statuses(answer) == {"32550": "verified"}


def test_a_left_out_code_of_a_service_the_draft_answers_is_not_offered(settings,
                                                                       catalog) -> None:
    # The diagnostic puncture code passes; a failing guidance code beside it is no reason to
    # offer a second puncture code of the same family.
    q = "LP under fluoroscopy for a therapeutic CSF drainage, 30 mL removed."
    first = {"codes": [code("62329"), code("77003")], "answer": "Report 62329 and 77003."}
    adv, model, _ = advisor_with(settings, catalog, [first, first],
                                 codes=("62329", "62328", "77003"))

    adv.ask(q)

    assert all("62328" not in str(m[-1].content) for _, m in model.calls[1:])


@pytest.fixture
def checker_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call from the pipeline into the checker, by entry point."""
    import advisor.pipeline
    from guardrails import policy

    calls: list[str] = []

    def counted(name: str, real: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return real(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(policy, "first_round", counted("first_round", policy.first_round))
    monkeypatch.setattr(policy, "after_reask", counted("after_reask", policy.after_reask))
    monkeypatch.setattr(advisor.pipeline, "check_claim",
                        counted("check_claim", advisor.pipeline.check_claim))
    return calls


@pytest.mark.parametrize(
    ("replies", "codes", "question", "rounds"),
    [
        ([{"codes": [code("20611", "aaaa1111")], "answer": "Report 20611."}],
         ("20610", "20611", "76942"), KNEE_Q, 1),
        ([{"codes": [code("76937")], "answer": "Report 76937."}] * 2,
         ("76937", "36556"), "Ultrasound guidance for vascular access, what do I bill?", 2),
        ([{"codes": [code("93308", "P1")], "answer": "Report 93308 as a complete echo."},
          {"codes": [], "answer": "No codes fit the criteria."}],
         ("93308",), "Limited follow-up TTE, which code?", 2),
        ([{"codes": [code("76937")], "answer": "Report 76937."}, ModelTimeout("too slow")],
         ("76937", "36556"), "Ultrasound guidance for vascular access, what do I bill?", 2),
    ],
    ids=["one-round", "reask-then-drop", "reask-discarded", "reask-failed"],
)
def test_the_checker_is_called_once_per_drafting_round(settings, catalog, checker_calls,
                                                       replies, codes, question, rounds) -> None:
    adv, model, _ = advisor_with(settings, catalog, list(replies), codes=codes)

    answer = adv.ask(question)

    assert answer.path == "draft"
    assert len(model.calls) == rounds
    assert checker_calls == ["first_round", "after_reask"][:rounds]


def test_the_drafting_modules_reach_the_checker_only_through_the_round_policy() -> None:
    # The round policy applies FIX, REASK and DROP; the pipeline never re-runs the checker
    # on its own (question fit for the candidate list is the one other use).
    import inspect

    import advisor.compose
    import advisor.drafting
    import advisor.pipeline

    for module in (advisor.pipeline, advisor.compose, advisor.drafting):
        text = inspect.getsource(module)
        assert "check_and_repair" not in text, module.__name__
        assert "guardrails.checker" not in text, module.__name__


def test_a_code_only_question_goes_through_the_claim_front_door(settings, catalog,
                                                                checker_calls) -> None:
    adv, model, _ = advisor_with(settings, catalog, [])
    answer = adv.ask("20610 76942")
    assert checker_calls == ["check_claim"]
    assert model.calls == []
    assert {c.code: c.status.value for c in answer.codes} == {"20611": "corrected"}


@pytest.mark.parametrize("error", [ModelUnavailable("no model file"), ModelTimeout("too slow")])
def test_model_failure_falls_back_to_unverified_candidates(settings, catalog, error) -> None:
    adv, model, _ = advisor_with(settings, catalog, [error])

    answer = adv.ask(KNEE_Q)

    assert answer.banner
    assert "unavailable" in answer.banner
    assert answer.path == "fallback"
    assert len(model.calls) == 1
    # 20610 (no imaging) is not offered: the question says ultrasound guidance was used;
    # nor 76942, which the question's procedure code (20611) includes.
    assert {c.code for c in answer.codes} == {"20611"}
    assert all(c.status.value == "not_verified" for c in answer.codes)
    assert "VERIFIED " not in answer.answer.replace("NOT VERIFIED", "")
    assert "pipeline.model_unavailable" in rules(answer)
    # Said in data too, so a scorer can tell a failed model from a deliberate fallback.
    assert answer.model_error == f"{type(error).__name__}: {error}"
    # Nothing in what the chat shows tells a clinician to run a command or change a setting.
    shown = " ".join([answer.banner or "", answer.answer,
                      *(f["message"] for f in answer.findings)])
    assert "advisor check" not in shown and "ADVISOR_" not in shown and str(error) not in shown
    assert answer.hint == str(error)


def test_unusable_model_output_falls_back(settings, catalog) -> None:
    adv, _, _ = advisor_with(settings, catalog, ["this is not json"])
    answer = adv.ask(KNEE_Q)
    assert answer.path == "fallback"
    assert answer.banner


def test_backend_none_answers_without_a_model(tmp_path, catalog) -> None:
    adv = Advisor(Settings(data_dir=tmp_path, backend="none"), catalog=catalog,
                  retriever=FakeRetriever(catalog, ["20611"], KNEE_PASSAGES))
    answer = adv.ask(KNEE_Q)
    assert answer.path == "fallback"
    assert "No language model is used here" in (answer.banner or "")
    assert "ADVISOR_BACKEND" not in (answer.banner or "")
    assert "ADVISOR_BACKEND" in (answer.hint or "")
    assert statuses(answer) == {"20611": "not_verified"}
    assert answer.model_error is None  # no model was meant to answer: not a failure


def test_retrieval_failure_does_not_let_the_model_guess(settings, catalog) -> None:
    model = ScriptedChatModel(replies=[])
    adv = Advisor(settings, catalog=catalog, retriever=FailingRetriever(), model=model)
    answer = adv.ask(KNEE_Q)
    assert model.calls == []
    assert answer.path == "fallback"
    # The banner speaks to the person asking; the command is the operator's hint.
    assert "guideline search is unavailable" in (answer.banner or "")
    assert "advisor index" not in (answer.banner or "")
    assert "advisor index" in (answer.hint or "")
    assert answer.model_error is None


@pytest.mark.parametrize("question", ["20610 76942", "lookup 76937", "check 93971-50",
                                      "37253 x6", "+76937"])
def test_a_question_of_only_codes_takes_the_lookup_path(settings, catalog, question) -> None:
    adv, model, retriever = advisor_with(settings, catalog, [])

    answer = adv.ask(question)

    assert model.calls == []
    assert retriever.queries == []
    assert answer.path == "lookup"
    assert answer.backend == "none"
    assert all(c.status.value for c in answer.codes)


def test_lookup_path_checks_the_pair(settings, catalog) -> None:
    adv, _, _ = advisor_with(settings, catalog, [])
    answer = adv.lookup(["20610", "76942"])
    assert statuses(answer) == {"20611": "corrected"}
    assert "pairs.bundled" in rules(answer)


def test_malformed_code_query_says_what_is_wrong(settings, catalog) -> None:
    adv, _, _ = advisor_with(settings, catalog, [])
    answer = adv.lookup(["7694x"])
    assert answer.codes == []
    assert "existence.malformed" in rules(answer)


@pytest.mark.parametrize("question", ["How do I bill a knee MRI?", "knee MRI billing",
                                      "What is the capital of France?"])
def test_out_of_scope_question_says_so(settings, catalog, question) -> None:
    adv, model, _ = advisor_with(settings, catalog, [])

    answer = adv.ask(question)

    assert answer.path == "out_of_scope"
    assert answer.codes == []
    assert model.calls == []
    assert "outside" in answer.answer
    assert "pipeline.out_of_scope" in rules(answer)


@pytest.mark.parametrize("question", [
    "Arthroscopic surgery of the right knee with a meniscectomy: billing?",
    "Laparoscopic appendectomy, what CPT?",
])
def test_a_service_no_code_describes_is_out_of_scope(settings, catalog, question) -> None:
    # Retrieval finds knee codes (the site words match), but the question's service is one
    # no code of the catalog describes, and it names no ultrasound: nothing is guessed.
    adv, model, _ = advisor_with(settings, catalog, [])
    answer = adv.ask(question)
    assert answer.path == "out_of_scope"
    assert model.calls == []


def test_a_surgery_with_ultrasound_in_it_is_in_scope(settings, catalog) -> None:
    reply = {"codes": [code("20611", "P1")], "answer": "20611."}
    adv, model, _ = advisor_with(settings, catalog, [reply])
    answer = adv.ask("Ultrasound-guided knee injection the week before arthroscopy.")
    assert answer.path == "draft"
    assert len(model.calls) == 1


def test_follow_up_uses_history_in_query_and_prompt(settings, catalog) -> None:
    first = {"codes": [code("93971", "P1")], "answer": "One leg: 93971."}
    second = {"codes": [code("93970", "P1")], "answer": "Both legs: 93970."}
    passages = [passage("dddd4444", "Complete bilateral venous duplex is 93970; unilateral or "
                        "limited is 93971.", ["93970", "93971"])]
    adv, model, retriever = advisor_with(settings, catalog, [first, second],
                                         codes=("93970", "93971"), passages=passages)

    one = adv.ask("Venous duplex ultrasound of the left leg for DVT")
    two = adv.ask("and if both legs?", history=[one])

    assert statuses(one) == {"93971": "verified"}
    assert statuses(two) == {"93970": "verified"}
    assert "left leg" in retriever.queries[1]
    assert "both legs" in retriever.queries[1]
    prompt = "\n".join(str(m.content) for m in model.calls[1][1])
    assert "93971 (verified)" in prompt


def prompt_of(model: ScriptedChatModel, call: int) -> str:
    return "\n".join(str(m.content) for m in model.calls[call][1])


def _offered(prompt: str) -> list[str]:
    return [ln.split(":")[0].strip("- ").strip() for ln in prompt.splitlines()
            if ln.startswith("- ") and ln[2:7].isalnum() and ln[7:8] == ":"]


def test_candidates_the_question_rules_out_come_last_never_dropped(settings, catalog) -> None:
    # Ranked by fit, nothing dropped: a reading that is wrong must not keep the right code
    # from the model; the checker still rules on what is drafted.
    draft = {"codes": [code("93308", "P1")], "answer": "A limited echo: 93308."}
    passages = [passage("eeee5555", "A limited or follow-up TTE is 93308.", ["93308"])]
    adv, model, _ = advisor_with(settings, catalog, [draft, draft],
                                 codes=("76705", "93306", "93308"), passages=passages)
    answer = adv.ask("Limited bedside echo for a pericardial effusion")
    offered = _offered(prompt_of(model, 0))
    assert offered[0] == "93308"
    # an abdominal code (the question names the heart) and the complete TTE (it asks for a
    # limited one) stay on the list, after the code that fits
    assert {"76705", "93306"} <= set(offered[1:])
    assert statuses(answer) == {"93308": "verified"}
    # and the model is told which fit and which the question rules out
    lines = {ln.split(":")[0].strip("- "): ln for ln in prompt_of(model, 0).splitlines()
             if ln.startswith("- ")}
    assert lines["93308"].endswith("(fits the question)")
    assert lines["93306"].endswith("(the question rules it out)")
    assert lines["76705"].endswith("(the question rules it out)")


def test_a_ruled_out_candidate_brings_the_code_that_fits_in_its_place(settings,
                                                                      catalog) -> None:
    draft = {"codes": [code("20611", "P1")], "answer": "Bill 20611."}
    adv, model, _ = advisor_with(settings, catalog, [draft], codes=("20610", "20604", "76942"))
    answer = adv.ask(KNEE_Q)
    offered = _offered(prompt_of(model, 0))
    # 20611 is offered in place of 20610 (no imaging) and 20604 (a small joint), before them
    assert "20611" in offered
    assert offered.index("20611") < offered.index("20610")
    assert offered.index("20611") < offered.index("20604")
    assert statuses(answer) == {"20611": "verified"}


def test_citations_only_for_cited_and_retrieved_passages(settings, catalog) -> None:
    draft = {"codes": [code("20611", "P1", "P9", "not-a-passage")], "answer": "Bill 20611."}
    adv, _, _ = advisor_with(settings, catalog, [draft])

    answer = adv.ask(KNEE_Q)

    assert [c.id for c in answer.citations] == ["aaaa1111"]
    assert answer.citations[0].source == "guidelines/aaaa1111.md"
    # The answer carries the passage it cites: no need to ask the retriever again.
    assert answer.citations[0].text == KNEE_PASSAGES[0].text
    assert answer.to_json()["citations"][0]["text"].startswith("Joint injections")


def test_json_shape(settings, catalog) -> None:
    draft = {"codes": [code("20611", "P1")], "answer": "Bill 20611."}
    adv, _, _ = advisor_with(settings, catalog, [draft])

    data = adv.ask(KNEE_Q).to_json()

    assert list(data)[:7] == ["answer", "codes", "findings", "citations", "ruleset", "backend",
                              "timings_ms"]
    assert set(data["timings_ms"]) == {"retrieve", "draft", "check", "total"}
    assert data["codes"][0] == {"code": "20611", "status": "verified",
                                "label": catalog.get("20611").label, "units": 1,
                                "modifiers": [], "findings": data["codes"][0]["findings"],
                                "reason": "reason 20611"}
    for f in data["findings"]:
        assert set(f) == {"rule", "severity", "codes", "message", "fix", "sources", "confidence"}
    json.dumps(data)


def test_stream_yields_text_then_the_answer(settings, catalog) -> None:
    draft = {"codes": [code("20611", "P1")], "answer": "Bill 20611."}
    adv, _, _ = advisor_with(settings, catalog, [draft])
    items = list(adv.stream(KNEE_Q))
    assert isinstance(items[-1], Answer)
    assert all(isinstance(i, str) for i in items[:-1])


def test_warned_codes_appear_only_in_findings(settings, catalog) -> None:
    draft = {"codes": [code("20611", "P1")],
             "answer": "Bill 20611. Do not report 76942 separately."}
    adv, _, _ = advisor_with(settings, catalog, [draft])
    answer = adv.ask(KNEE_Q)
    assert "76942" in answer.warned
    assert statuses(answer) == {"20611": "verified"}


# ------------------------------------------------------------------- smaller pieces


@pytest.mark.parametrize(("text", "tokens"), [
    ("20610 76942", ["20610", "76942"]),
    ("lookup 76937", ["76937"]),
    ("check 93971-50", ["93971-50"]),
    ("20610 + 76942", ["20610", "76942"]),
    ("37253 x6", ["37253", "x6"]),
    ("What is 76942?", None),
    ("knee injection", None),
    ("check", None),
])
def test_parse_code_query(text, tokens) -> None:
    assert parse_code_query(text) == tokens


def test_draft_prompt_stays_short_and_tagged(catalog) -> None:
    cands = [Candidate(code=c, label=catalog.get(c).label * 3, why="", score=1.0)
             for c in ("20610", "20611", "76942", "20604", "20606", "20600", "76937", "36556",
                       "77001")]
    long = [passage(f"p{i}", "word " * 400) for i in range(6)]
    ctx = PromptContext(question="guided knee injection " * 10, candidates=cands, passages=long)
    messages = draft_messages(ctx)
    chars = sum(len(str(m.content)) for m in messages)
    assert chars / 4 < 700  # about 4 characters a token for this English
    assert task_of(messages) is Task.DRAFT
    assert list(ctx.short_ids) == ["P1", "P2", "P3"]
    assert "36556" in str(messages[-1].content)
    assert "77001" not in str(messages[-1].content)  # only MAX_CANDIDATES (8) candidates


def test_stream_renderer_shows_codes_and_prose_not_json() -> None:
    text = json.dumps({"codes": [code("20611", "P1")], "answer": 'Bill "20611" once.\nDone'})
    r = DraftRenderer()
    out = "".join(r.feed(text[i:i + 3]) for i in range(0, len(text), 3))
    assert "drafting 20611 (not yet checked)" in out
    assert 'Bill "20611" once.\nDone' in out
    assert "{" not in out


def test_an_office_visit_level_question_is_out_of_scope(settings, catalog) -> None:
    # "level" is in some labels (nerve block levels) but says nothing of ultrasound.
    adv, model, _ = advisor_with(settings, catalog, [], codes=("64483",))
    answer = adv.ask("Which E/M level for an established patient office visit of 30 minutes?")
    assert answer.path == "out_of_scope"
    assert answer.codes == []
    assert model.calls == []


def test_guidance_of_another_modality_is_in_scope(settings, catalog) -> None:
    # The ruleset holds the CT guidance code and the FNA codes that include CT guidance:
    # "CT-guided" is a question the advisor answers, unlike "knee MRI".
    draft = {"codes": [code("10009")], "answer": "Report 10009 for the first lesion."}
    adv, model, _ = advisor_with(settings, catalog, [draft], codes=("10009", "77012"))

    answer = adv.ask("CT-guided fine needle aspiration of a lung lesion, first lesion.")

    assert answer.path == "draft"
    assert len(model.calls) == 1
    assert statuses(answer) == {"10009": "verified"}


def test_a_guided_line_drafted_without_its_guidance_add_on_gets_it(settings, catalog) -> None:
    # A small model drafts the central line alone; the question says ultrasound guidance.
    draft = {"codes": [code("36556")], "answer": "Report 36556."}
    adv, model, _ = advisor_with(settings, catalog, [draft], codes=("36556", "76937"))

    answer = adv.ask("Central venous catheter placement, adult, with ultrasound guidance")

    assert statuses(answer) == {"36556": "verified", "76937": "corrected"}
    assert len(model.calls) == 1
    assert "omission.implied" in rules(answer)


def test_a_code_the_question_leaves_unsupported_is_hinted_once(settings, catalog) -> None:
    # 93303 needs a congenital anomaly the question never names; the checker names 93307
    # as the code that fits. The model is told once; its better draft is used.
    first = {"codes": [code("93303")], "answer": "Report 93303."}
    second = {"codes": [code("93307")], "answer": "Report 93307."}
    q = "Complete transthoracic echo without any Doppler. Code?"
    adv, model, _ = advisor_with(settings, catalog, [first, second],
                                 codes=("93303", "93307", "93306"), passages=[])

    answer = adv.ask(q)

    assert len(model.calls) == 2
    assert statuses(answer) == {"93307": "verified"}
    assert "pipeline.reasked" in rules(answer)


def test_a_hint_answered_no_better_keeps_the_first_draft_not_verified(settings, catalog
                                                                      ) -> None:
    # told of the code that fits, the model answers with nothing: the first draft stays,
    # its code not verified (unknown is not wrong: never dropped for a hint)
    first = {"codes": [code("93303")], "answer": "Report 93303."}
    empty = {"codes": [], "answer": "No codes fit."}
    q = "Complete transthoracic echo without any Doppler. Code?"
    adv, model, _ = advisor_with(settings, catalog, [first, empty],
                                 codes=("93303", "93307", "93306"), passages=[])

    answer = adv.ask(q)

    assert len(model.calls) == 2
    assert statuses(answer) == {"93303": "not_verified"}
    assert "pipeline.dropped_after_reask" not in rules(answer)
    assert "pipeline.reask_discarded" in rules(answer)


def test_a_draft_with_no_code_is_asked_again_with_the_codes_the_question_supports(
        settings, catalog) -> None:
    # the model drafts nothing for a question whose reading fully supports a candidate
    # (a limited echo): it is asked once more, told of that code, and its answer is checked
    first = {"codes": [], "answer": "It depends on the payer."}
    second = {"codes": [code("93308")], "answer": "Report 93308."}
    q = "Limited transthoracic echo for a pericardial effusion, no Doppler. Code?"
    adv, model, _ = advisor_with(settings, catalog, [first, second],
                                 codes=("93306", "93308", "93307"), passages=[])

    answer = adv.ask(q)

    assert len(model.calls) == 2
    assert "93308" in str(model.calls[1])
    assert statuses(answer) == {"93308": "verified"}
    assert "pipeline.reasked" in rules(answer)


def test_a_draft_with_no_code_is_not_asked_again_when_no_candidate_is_supported(
        settings, catalog) -> None:
    # a question that names no service: nothing the reading supports, so no second call
    first = {"codes": [], "answer": "Add-on codes need a primary code on the same claim."}
    adv, model, _ = advisor_with(settings, catalog, [first],
                                 codes=("76937", "36556"), passages=[])

    answer = adv.ask("What documentation do payers want for ultrasound guidance?")

    assert len(model.calls) == 1
    assert statuses(answer) == {}
