"""The checker's front door for a claim, and the one definition of a changed claim."""

from __future__ import annotations

import pytest

import guardrails
from advisor.render import format_outcome
from advisor.ui import outcome_html
from guardrails import check_claim, draft_of
from guardrails.claims import MalformedCode
from guardrails.repair import check_and_repair
from guardrails.report import Draft, DraftCode
from knowledge.catalog import load_catalog

CAT = load_catalog()


def test_keyed_lines_are_read_as_a_coder_keys_them() -> None:
    draft = draft_of(["93971-50", "+76937", "37253", "x6", "76942 -59"])
    assert [(c.code, c.units, c.modifiers, c.add_on_mark) for c in draft.codes] == [
        ("93971", 1, ("50",), False),
        ("76937", 1, (), True),
        ("37253", 6, (), False),
        ("76942", 1, ("59",), False),
    ]


def test_lines_may_be_keyed_text_or_ready_lines_in_any_mix() -> None:
    draft = draft_of([DraftCode("20611", reason="from the model"), "76942"],
                     text="Bill 20611.", question="Knee injection?", history="earlier")
    assert [c.code for c in draft.codes] == ["20611", "76942"]
    assert draft.codes[0].reason == "from the model"
    assert (draft.text, draft.context, draft.history) == ("Bill 20611.", "Knee injection?",
                                                           "earlier")


@pytest.mark.parametrize("bad", ["Z1234", "7694", "76942-ZZ", "37253x0"])
def test_malformed_input_says_what_a_code_looks_like(bad: str) -> None:
    with pytest.raises(MalformedCode) as info:
        check_claim([bad], CAT)
    assert isinstance(info.value, ValueError)
    assert bad in str(info.value)


def test_the_front_door_is_check_and_repair_of_the_keyed_claim() -> None:
    via_door = check_claim(["20610", "76942"], CAT, question="US-guided knee injection")
    direct = check_and_repair(
        Draft(codes=(DraftCode("20610"), DraftCode("76942")), context="US-guided knee injection"),
        CAT,
    )
    assert via_door.to_dict() == direct.to_dict()
    assert guardrails.check_claim is check_claim


@pytest.mark.parametrize(
    ("claim", "changed", "after"),
    [
        ("20611", False, "20611"),
        ("20610 76942", True, "20611"),  # codes replaced
        ("76506-59x2", True, "76506x2"),  # only a modifier dropped: still a change
        ("20553 76942x2", True, "20553 76942"),  # only the units
    ],
)
def test_claim_changed_is_one_definition_for_cli_and_web_app(claim: str, changed: bool,
                                                            after: str) -> None:
    outcome = check_claim(claim.split(), CAT)
    assert outcome.claim_changed() is changed
    assert outcome.corrected_claim() == after
    assert ("corrected claim:" in format_outcome(outcome)) is changed
    assert ("Corrected claim:" in outcome_html(outcome, CAT)) is changed
    data = outcome.to_dict()
    assert (data["claim_changed"], data["corrected_claim_text"]) == (changed, after)
