"""The drafting pipeline with a scripted chat model and a fake retriever (no model, no index).

Each test reads like a script: the user asks, the model drafts what the script says, the
advisor answers; assert the verified codes, the findings and how many model calls were made.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field

from advisor.llm import ModelTimeout, ModelUnavailable
from advisor.pipeline import Advisor, Answer, _DraftRenderer, parse_code_query
from advisor.prompts import PromptContext, Task, draft_messages, task_of
from advisor.retriever import Candidate, Passage, RetrievalResult
from advisor.settings import Settings
from knowledge.catalog import load_catalog


class ScriptedChatModel(BaseChatModel):
    """Answers from a queue (per task when given a dict) and records every call."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    replies: list[Any] = Field(default_factory=list)
    by_task: dict[str, list[Any]] = Field(default_factory=dict)
    calls: list[tuple[Task | None, list[BaseMessage]]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        task = task_of(messages)
        self.calls.append((task, list(messages)))
        queue = self.by_task.get(str(task)) if task and self.by_task else self.replies
        if not queue:
            raise AssertionError(f"unexpected model call for task {task}")
        reply = queue.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        text = reply if isinstance(reply, str) else json.dumps(reply)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


def passage(pid: str, text: str, codes: Sequence[str] = ()) -> Passage:
    return Passage(id=pid, text=text, source=f"guidelines/{pid}.md", title=f"Title {pid}",
                   section="Coding", score=0.5, codes=list(codes), kind="guideline")


class FakeRetriever:
    """Returns fixed passages and candidates; records the queries it was sent."""

    def __init__(self, catalog: Any, codes: Sequence[str], passages: Sequence[Passage]) -> None:
        self.queries: list[str] = []
        self.result = RetrievalResult(
            query="",
            passages=list(passages),
            candidates=[Candidate(code=c, label=catalog.get(c).label, why="test", score=1.0)
                        for c in codes],
        )

    def search(self, query: str, k: int | None = None) -> RetrievalResult:
        self.queries.append(query)
        return self.result


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
    # The prose still says 20610 + 76942; both are flagged, the summary shows 20611 first.
    assert "20610 [removed]" in answer.answer
    assert "76942 [removed]" in answer.answer
    assert answer.answer.index("20611") < answer.answer.index("20610 [removed]")
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
    assert "76937 [ruled out by the question]" in answer.answer
    assert "99999 [not checked]" in Advisor._flag_prose("see 99999", [], set(), set(), {"76937"})


def test_unknown_code_is_dropped_with_a_finding(settings, catalog) -> None:
    draft = {"codes": [code("20611", "P1"), code("99999")], "answer": "Use 20611 and 99999."}
    adv, _, _ = advisor_with(settings, catalog, [draft])

    answer = adv.ask(KNEE_Q)

    assert statuses(answer) == {"20611": "verified"}
    assert "existence.unknown" in rules(answer)
    assert [c.code for c in answer.removed] == ["99999"]
    assert "99999 [removed]" in answer.answer


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


def test_reask_that_fixes_the_draft_ends_verified(settings, catalog) -> None:
    bad = {"codes": [code("37252")], "answer": "Report 37252."}
    good = {"codes": [code("36200", "P1"), code("37252", "P1")],
            "answer": "Report the catheter placement 36200 with 37252."}
    adv, model, _ = advisor_with(settings, catalog, [bad, good], codes=("37252", "36200"))

    answer = adv.ask("IVUS of one iliac vessel, which codes?")

    assert len(model.calls) == 2
    assert statuses(answer) == {"36200": "verified", "37252": "verified"}
    assert "pipeline.dropped_after_reask" not in rules(answer)


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


@pytest.mark.parametrize("error", [ModelUnavailable("no model file"), ModelTimeout("too slow")])
def test_model_failure_falls_back_to_unverified_candidates(settings, catalog, error) -> None:
    adv, model, _ = advisor_with(settings, catalog, [error])

    answer = adv.ask(KNEE_Q)

    assert answer.banner
    assert "unavailable" in answer.banner
    assert answer.path == "fallback"
    assert len(model.calls) == 1
    # 20610 (no imaging) is not offered: the question says ultrasound guidance was used.
    assert {c.code for c in answer.codes} == {"20611", "76942"}
    assert all(c.status.value == "not_verified" for c in answer.codes)
    assert "VERIFIED " not in answer.answer.replace("NOT VERIFIED", "")
    assert "pipeline.model_unavailable" in rules(answer)


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
    assert "not used" in (answer.banner or "")
    assert statuses(answer) == {"20611": "not_verified"}


def test_retrieval_failure_does_not_let_the_model_guess(settings, catalog) -> None:
    model = ScriptedChatModel(replies=[])
    adv = Advisor(settings, catalog=catalog, retriever=FailingRetriever(), model=model)
    answer = adv.ask(KNEE_Q)
    assert model.calls == []
    assert answer.path == "fallback"
    assert "advisor index" in (answer.banner or "")


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


def test_candidates_the_question_rules_out_are_not_offered(settings, catalog) -> None:
    draft = {"codes": [code("93308", "P1")], "answer": "A limited echo: 93308."}
    passages = [passage("eeee5555", "A limited or follow-up TTE is 93308.", ["93308"])]
    adv, model, _ = advisor_with(settings, catalog, [draft, draft],
                                 codes=("93308", "76705", "93306"), passages=passages)
    answer = adv.ask("Limited bedside echo for a pericardial effusion")
    prompt = prompt_of(model, 0)
    assert "- 93308:" in prompt
    assert "- 76705:" not in prompt  # an abdominal code: the question names no abdomen
    assert "- 93306:" not in prompt  # the complete TTE: the question asks for a limited one
    assert statuses(answer) == {"93308": "verified"}
    # When no candidate fits the question's words, none is withheld.
    adv.ask("What do I bill for the ultrasound I did today?")
    assert "- 76705:" in prompt_of(model, 1)


def test_a_ruled_out_candidate_gives_way_to_the_code_the_rule_names(settings, catalog) -> None:
    draft = {"codes": [code("20611", "P1")], "answer": "Bill 20611."}
    adv, model, _ = advisor_with(settings, catalog, [draft], codes=("20610", "20604", "76942"))
    answer = adv.ask(KNEE_Q)
    prompt = prompt_of(model, 0)
    assert "- 20611:" in prompt  # in place of 20610 (no imaging) and 20604 (small joint)
    assert "- 20610:" not in prompt and "- 20604:" not in prompt
    assert statuses(answer) == {"20611": "verified"}


def test_citations_only_for_cited_and_retrieved_passages(settings, catalog) -> None:
    draft = {"codes": [code("20611", "P1", "P9", "not-a-passage")], "answer": "Bill 20611."}
    adv, _, _ = advisor_with(settings, catalog, [draft])

    answer = adv.ask(KNEE_Q)

    assert [c.id for c in answer.citations] == ["aaaa1111"]
    assert answer.citations[0].source == "guidelines/aaaa1111.md"


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
             for c in ("20610", "20611", "76942", "20604", "20606", "20600", "76937", "36556")]
    long = [passage(f"p{i}", "word " * 400) for i in range(6)]
    ctx = PromptContext(question="guided knee injection " * 10, candidates=cands, passages=long)
    messages = draft_messages(ctx)
    chars = sum(len(str(m.content)) for m in messages)
    assert chars / 4 < 700  # about 4 characters a token for this English
    assert task_of(messages) is Task.DRAFT
    assert list(ctx.short_ids) == ["P1", "P2", "P3"]
    assert "36556" not in str(messages[-1].content)  # only 6 candidates


def test_stream_renderer_shows_codes_and_prose_not_json() -> None:
    text = json.dumps({"codes": [code("20611", "P1")], "answer": 'Bill "20611" once.\nDone'})
    r = _DraftRenderer()
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
