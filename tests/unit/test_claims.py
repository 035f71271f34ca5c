"""Claims extraction: codes, modifiers, units, polarity, assertions, non-codes, claim lines."""

from __future__ import annotations

import pytest

from guardrails.claims import (
    MAX_TEXT_CHARS,
    MODIFIERS,
    Claims,
    CodeKind,
    MalformedCode,
    Polarity,
    extract,
    parse_claim_line,
    parse_claim_lines,
)

R, W, M = Polarity.RECOMMENDED, Polarity.WARNED, Polarity.MENTIONED


def codes(text: str) -> list[str]:
    return [m.code for m in extract(text).mentions]


def polarities(text: str) -> list[tuple[str, Polarity]]:
    return [(m.code, m.polarity) for m in extract(text).mentions]


def pairs(text: str) -> set[tuple[str, str, bool]]:
    return {(p.first, p.second, p.together) for p in extract(text).pairs}


# ----------------------------------------------------------------------------- codes


@pytest.mark.parametrize(
    ("text", "code", "kind"),
    [
        ("Report 76942 once.", "76942", CodeKind.CPT),
        ("Category III 0346T applies.", "0346T", CodeKind.CATEGORY_III),
        ("written 0346t in lower case", "0346T", CodeKind.CATEGORY_III),
        ("Bill G0389 for the screen.", "G0389", CodeKind.HCPCS),
        ("Drug J3301 x4.", "J3301", CodeKind.HCPCS),
    ],
)
def test_code_kinds_and_spans(text: str, code: str, kind: CodeKind) -> None:
    (m,) = extract(text).mentions
    assert (m.code, m.kind) == (code, kind)
    assert text[m.start : m.end].upper() == code


def test_add_on_mark_is_a_leading_plus() -> None:
    c = extract("Report 36556 and +76937; contrast US = 76978/+76979.")
    marks = {m.code: m.add_on_mark for m in c.mentions}
    assert marks == {"36556": False, "76937": True, "76978": False, "76979": True}
    plus = next(m for m in c.mentions if m.code == "76937")
    assert c.text[plus.start - 1] == "+"


def test_plus_between_codes_is_a_pair_not_an_add_on_mark() -> None:
    c = extract("20610+76942")
    assert [m.add_on_mark for m in c.mentions] == [False, False]
    assert pairs("20610+76942") == {("20610", "76942", True)}


def test_lower_case_hcpcs_letter_is_not_a_code() -> None:
    assert codes("g0389 and a1234 are words here") == []


def test_codes_in_order_and_distinct() -> None:
    c = extract("Report 20611. Do not add 76942. 20611 again.")
    assert c.codes() == ("20611", "76942")
    assert [m.sentence for m in c.mentions] == [0, 1, 2]
    s, e = c.sentences[1]
    assert c.text[s:e] == "Do not add 76942."


# ----------------------------------------------------------------------------- modifiers


@pytest.mark.parametrize(
    ("text", "mods"),
    [
        ("20611-RT", ("RT",)),
        ("93971 -50", ("50",)),
        ("76942-59", ("59",)),
        ("20610 with modifier 50", ("50",)),
        ("76942 modifier -59", ("59",)),
        ("20610-rt", ("RT",)),
        ("76641-50-RT", ("50", "RT")),
        ("76942 XU", ("XU",)),
        ("76942-XE", ("XE",)),
        ("76942-XS", ("XS",)),
        ("76942-XP", ("XP",)),
        ("93306-26", ("26",)),
        ("93306-TC", ("TC",)),
        ("76705-52", ("52",)),
        ("76705-76", ("76",)),
        ("76705-77", ("77",)),
        ("20611 LT", ("LT",)),
        ("76942 with modifiers 59 and XU", ("59", "XU")),
        ("Append modifier 59 to 76942", ("59",)),
        ("76882 may be reported with modifier 59 when", ("59",)),
        ("76942-59x2", ("59",)),
    ],
)
def test_modifier_forms(text: str, mods: tuple[str, ...]) -> None:
    (m,) = extract(text).mentions
    assert m.modifiers == mods


def test_lower_case_word_after_a_code_is_not_a_modifier() -> None:
    (m,) = extract("76942 lt is not a modifier without a dash").mentions
    assert m.modifiers == ()


def test_modifier_50_is_a_bilateral_assertion() -> None:
    c = extract("complete bilateral = 76642-50")
    assert [(b.code, b.bilateral) for b in c.bilateral] == [("76642", True)]


def test_known_modifiers() -> None:
    for mod in ("26", "TC", "50", "52", "59", "XE", "XP", "XS", "XU", "76", "77", "RT", "LT"):
        assert mod in MODIFIERS
    assert "ZZ" not in MODIFIERS


# ----------------------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("37253x6", 6),
        ("37253X6", 6),
        ("37253 x6", 6),
        ("37253 x 6", 6),
        ("37253 ×6", 6),
        ("37253×2", 2),
        ("37253 2 units", 2),
        ("37253, units: 3", 3),
        ("37253 (3 units)", 3),
        ("37253 (x3)", 3),
        ("4 units of 37253", 4),
        ("76942-59x2", 2),
        ("37253", None),
    ],
)
def test_unit_forms(text: str, units: int | None) -> None:
    (m,) = extract(text).mentions
    assert m.units == units


def test_x_before_another_code_is_not_units() -> None:
    c = extract("20610 x 76942")
    assert [(m.code, m.units) for m in c.mentions] == [("20610", None), ("76942", None)]


# ----------------------------------------------------------------------------- non-codes


@pytest.mark.parametrize(
    "text",
    [
        "Effective 1/1/2015 and 2016-01-01, since 2019, in 2015.",
        "The fee was $76942 or $ 76942 or 76,942.00 dollars.",
        "Call 555-76942 or (800) 555-1212.",
        "Mail to ZIP 12345-6789; zip code 76942; ZIP: 76942.",
        "Diagnoses M17.11, S83.241A and Z12.31.",
        "A value of 76942.5 and 76942% and 123456 and 7694212.",
        "At 10:30 and 12:45:30.",
        "MRN 12345678, MRN: 76942, mrn #76942, #76942, account 76942, NPI 1234567890.",
        "Order ID 76942.",
    ],
)
def test_numbers_that_are_not_codes(text: str) -> None:
    assert codes(text) == []


def test_range_of_codes_keeps_both_ends() -> None:
    assert codes("joints are 20600-20611") == ["20600", "20611"]


def test_code_at_sentence_end_is_a_code() -> None:
    assert codes("Report 76942.") == ["76942"]


# ----------------------------------------------------------------------------- polarity


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Do not add 76942.", [("76942", W)]),
        ("Report 20611, not 20610.", [("20611", R), ("20610", W)]),
        ("Use 20611 instead of 20610.", [("20611", R), ("20610", W)]),
        ("Report 20611 rather than 76942.", [("20611", R), ("76942", W)]),
        ("76942 is not separately reportable.", [("76942", W)]),
        ("Never report 93320 with 93306.", [("93320", W), ("93306", M)]),
        ("Avoid 76942 for joint injections.", [("76942", W)]),
        ("20610 + 76942 is wrong.", [("20610", W), ("76942", W)]),
        (
            "20610 + 76942 is incorrect; report 20611.",
            [("20610", W), ("76942", W), ("20611", R)],
        ),
        ("Since 20611 already includes guidance, do not add 76942.", [("20611", M), ("76942", W)]),
        ("Report 36556 with +76937.", [("36556", R), ("76937", R)]),
        ("76942 is bundled into 20611.", [("76942", W), ("20611", M)]),
        ("76943/76944 do not exist.", [("76943", W), ("76944", W)]),
        ("Report 20611 without 76942.", [("20611", R), ("76942", W)]),
        ("If 36556 is reported, add +76937.", [("36556", M), ("76937", R)]),
        ("Don't report 76942 or 76937 for this.", [("76942", W), ("76937", W)]),
        ("Code 20611 (not 20610 + 76942).", [("20611", R), ("20610", W), ("76942", W)]),
        ("76942 should not be billed with 20611.", [("76942", W), ("20611", M)]),
        ("Do not bill 93320 with 93325", [("93320", W), ("93325", M)]),
        ("Do not add 76942 to 20611.", [("76942", W), ("20611", M)]),
        (
            "Instead of 20610 + 76942, report 20611.",
            [("20610", W), ("76942", W), ("20611", R)],
        ),
        ("Incorrect: 20610 + 76942. Correct: 20611.", [("20610", W), ("76942", W), ("20611", R)]),
        ("37250 was replaced by 37252.", [("37250", W), ("37252", R)]),
        ("76937 is not an add-on.", [("76937", R)]),
        ("Do not forget to document the image for 76942.", [("76942", R)]),
        (
            "Since 1/1/2015 report 20604/20606/20611 (US guidance included); "
            "76942 not separately reportable",
            [("20604", R), ("20606", R), ("20611", R), ("76942", W)],
        ),
        (
            "Report 20604, 20606, or 20611 as documented, not 76942.",
            [("20604", R), ("20606", R), ("20611", R), ("76942", W)],
        ),
        (
            "If the study was done for a separate indication, 76882 may be reported.",
            [("76882", R)],
        ),
        ("Do not add 76942 because 20611 includes guidance.", [("76942", W), ("20611", M)]),
    ],
)
def test_polarity(text: str, expected: list[tuple[str, Polarity]]) -> None:
    assert polarities(text) == expected


def test_recommended_and_warned_views() -> None:
    c = extract("Report 20611; do not add 76942.")
    assert [m.code for m in c.recommended()] == ["20611"]
    assert [m.code for m in c.warned()] == ["76942"]


# ----------------------------------------------------------------------------- assertions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("93308 complete", {("93308", "complete")}),
        ("complete 76705", {("76705", "complete")}),
        ("76705 is the complete abdomen", {("76705", "complete")}),
        ("a limited 76700", {("76700", "limited")}),
        ("76700 complete, 76705 limited", {("76700", "complete"), ("76705", "limited")}),
        ("Complete TTE without Doppler may add 93320/93325", set()),
        ("76942 is limited to one unit per encounter", set()),
    ],
)
def test_extent_assertions(text: str, expected: set[tuple[str, str]]) -> None:
    assert {(a.code, a.extent) for a in extract(text).extents} == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("76942 is an add-on", {("76942", True)}),
        ("76937 is not an add-on code", {("76937", False)}),
        ("76937 IS an add-on ('list separately')", {("76937", True)}),
        ("Only 76979 (each additional lesion) is designated add-on", {("76979", True)}),
        ("use add-ons 37252/+37253", {("37252", True), ("37253", True)}),
        ("76942 is a stand-alone code", {("76942", False)}),
        ("93307 + Doppler add-ons", set()),
        ("Both CEUS codes are add-ons", set()),
    ],
)
def test_add_on_assertions(text: str, expected: set[tuple[str, bool]]) -> None:
    assert {(a.code, a.is_add_on) for a in extract(text).add_ons} == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("since 20611 already includes guidance", {("20611", True)}),
        ("report 20604/20606 (US guidance included)", {("20604", True), ("20606", True)}),
        ("10005 includes US guidance", {("10005", True)}),
        ("20610 does not include guidance", {("20610", False)}),
        ("20610 = injection of a major joint, without US guidance", {("20610", False)}),
        ("guidance is included in 20611", {("20611", True)}),
        ("guidance is not included in 20610", {("20610", False)}),
        ("36572/36573 including all imaging", {("36572", True), ("36573", True)}),
        ("Do not add 76942 as the procedure includes guidance.", set()),
        ("Avoid 76942 when the procedure code includes guidance.", set()),
    ],
)
def test_guidance_assertions(text: str, expected: set[tuple[str, bool]]) -> None:
    assert {(g.code, g.includes_guidance) for g in extract(text).guidance} == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bilateral lower extremity venous duplex is 93970", {("93970", True)}),
        ("93971 is unilateral or limited", {("93971", False)}),
        ("76641 covering both sides", {("76641", True)}),
        ("93971 -50", {("93971", True)}),
        ("76882 is not bilateral", {("76882", False)}),
    ],
)
def test_bilateral_assertions(text: str, expected: set[tuple[str, bool]]) -> None:
    assert {(b.code, b.bilateral) for b in extract(text).bilateral} == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bill 20610 with 76942.", {("20610", "76942", True)}),
        ("20610 + 76942", {("20610", "76942", True)}),
        ("Report 20611 and 76942 together.", {("20611", "76942", True)}),
        ("Report 36556 plus 76937.", {("36556", "76937", True)}),
        ("Report 36556 along with 76937.", {("36556", "76937", True)}),
        ("Add +76937 to 36556.", {("76937", "36556", True)}),
        ("Never bill 93320 with 93306.", {("93320", "93306", False)}),
        ("Do not bill 20610 with 76942.", {("20610", "76942", False)}),
        ("20610 and 76942 cannot be reported together.", {("20610", "76942", False)}),
        ("20610 + 76942 is wrong.", {("20610", "76942", False)}),
        ("Report 20611 instead of 20610 + 76942.", {("20610", "76942", False)}),
        (
            "Peripheral IVUS = 37250/37251 + 75945/75946",
            {
                ("37250", "75945", True),
                ("37250", "75946", True),
                ("37251", "75945", True),
                ("37251", "75946", True),
            },
        ),
        ("Report 20611 and 76942.", set()),
        ("20604/20606/20611", set()),
    ],
)
def test_pair_statements(text: str, expected: set[tuple[str, str, bool]]) -> None:
    assert pairs(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("76942 does not require a permanent image.", {("76942", "permanent_image", False)}),
        ("76937 requires a permanent image.", {("76937", "permanent_image", True)}),
        ("For 76937 the image must be saved.", {("76937", "permanent_image", True)}),
        ("No image needed for 76942.", {("76942", "permanent_image", False)}),
        ("76937: no need to document patency.", {("76937", "vessel_patency", False)}),
        (
            "Report +76937. Documentation must include vessel patency, real-time needle entry "
            "and a permanent image.",
            {
                ("76937", "vessel_patency", True),
                ("76937", "realtime_needle_entry", True),
                ("76937", "permanent_image", True),
            },
        ),
        (
            "For 76937, no need to document patency, needle entry or a permanent image.",
            {
                ("76937", "vessel_patency", False),
                ("76937", "realtime_needle_entry", False),
                ("76937", "permanent_image", False),
            },
        ),
        (
            "Evaluation of potential access sites is required for 76937.",
            {("76937", "sites_evaluated", True)},
        ),
        (
            "A written report and medical necessity are needed for 76942.",
            {("76942", "written_report", True), ("76942", "medical_necessity", True)},
        ),
        ("A permanent image is optional.", {(None, "permanent_image", False)}),
        (
            "76942 is not an add-on and requires a permanent image.",
            {("76942", "permanent_image", True)},
        ),
        ("Image guidance is used for 76942.", set()),
    ],
)
def test_documentation_statements(text: str, expected: set[tuple[str | None, str, bool]]) -> None:
    assert {(d.code, d.element, d.required) for d in extract(text).docs} == expected


def test_doc_statement_takes_the_nearest_code_in_its_sentence() -> None:
    c = extract("Report 36556 and 76937; 76937 requires a permanent image.")
    assert [d.code for d in c.docs] == ["76937"]


# ----------------------------------------------------------------------------- web claims
# The wrong claims collected from the web (reference/ultrasound/web_errors.json).

WEB_CLAIMS: list[tuple[str, list[str]]] = [
    ("US-guided joint injection = 20610 + 76942", ["20610", "76942"]),
    ("20610 = 'steroid injection, single joint'", ["20610"]),
    ("20550 = injection of multiple joints", ["20550"]),
    ("76604 has a 'complete' version reported with a modifier", ["76604"]),
    ("POCUS has its own CPT codes", []),
    ("76937 is not an add-on", ["76937"]),
    ("76942 is an add-on code", ["76942"]),
    (
        "10005 + 76942 for US-guided soft-tissue FNA; 76942 for central venous access",
        ["10005", "76942", "76942"],
    ),
    ("Arterial line US guidance = 76942", ["76942"]),
    (
        "76705 = complete abdomen and 76700 = limited; 93880 for hepatic Doppler; "
        "'77602' for contrast",
        ["76705", "76700", "93880", "77602"],
    ),
    ("76706 is for AAA surveillance/follow-up of known aneurysm", ["76706"]),
    (
        "76642 is the 'complete' breast code; complete bilateral = 76642-50; code '76442'",
        ["76642", "76642", "76442"],
    ),
    (
        "93355 = complete TEE, 93356 = probe placement only, 93350 = interpretation only",
        ["93355", "93356", "93350"],
    ),
    ("Bill 20606/20611 'guidance codes' separately with 76882", ["20606", "20611", "76882"]),
    ("Do not bill 93320 with 93325", ["93320", "93325"]),
    (
        "Quiz answer options 76943/76944 and '20612 = major joint injection'",
        ["76943", "76944", "20612"],
    ),
    ("Peripheral IVUS = 37250/37251 + 75945/75946", ["37250", "37251", "75945", "75946"]),
    (
        "36568/36569/36572/36573 are 'tunneled catheter insertions'",
        ["36568", "36569", "36572", "36573"],
    ),
    ("Both CEUS codes are add-ons", []),
    (
        "Complete TTE without Doppler may add 93320/93325 (93307 + Doppler add-ons)",
        ["93320", "93325", "93307"],
    ),
]


@pytest.mark.parametrize(("claim", "expected"), WEB_CLAIMS, ids=[c[:40] for c, _ in WEB_CLAIMS])
def test_web_claim_codes(claim: str, expected: list[str]) -> None:
    c = extract(claim)
    assert codes(claim) == expected
    for m in c.mentions:
        assert claim[m.start : m.end] == m.code


def test_web_claim_assertions() -> None:
    assert pairs(WEB_CLAIMS[0][0]) == {("20610", "76942", True)}
    assert [(a.code, a.extent) for a in extract(WEB_CLAIMS[3][0]).extents] == [
        ("76604", "complete")
    ]
    assert [(a.code, a.is_add_on) for a in extract(WEB_CLAIMS[5][0]).add_ons] == [("76937", False)]
    assert [(a.code, a.is_add_on) for a in extract(WEB_CLAIMS[6][0]).add_ons] == [("76942", True)]
    assert pairs(WEB_CLAIMS[7][0]) == {("10005", "76942", True)}
    assert {(a.code, a.extent) for a in extract(WEB_CLAIMS[9][0]).extents} == {
        ("76705", "complete"),
        ("76700", "limited"),
    }
    c = extract(WEB_CLAIMS[11][0])
    assert {(a.code, a.extent) for a in c.extents} == {("76642", "complete")}
    assert {(b.code, b.bilateral) for b in c.bilateral} == {("76642", True)}
    assert [m.modifiers for m in c.mentions] == [(), ("50",), ()]
    assert {(a.code, a.extent) for a in extract(WEB_CLAIMS[12][0]).extents} == {
        ("93355", "complete")
    }
    assert pairs(WEB_CLAIMS[13][0]) == {("20606", "76882", True), ("20611", "76882", True)}
    c = extract(WEB_CLAIMS[14][0])
    assert pairs(WEB_CLAIMS[14][0]) == {("93320", "93325", False)}
    assert [m.polarity for m in c.mentions] == [W, M]
    assert len(pairs(WEB_CLAIMS[16][0])) == 4
    c = extract(WEB_CLAIMS[19][0])
    assert c.extents == ()
    assert c.add_ons == ()
    assert c.pairs == ()


# ----------------------------------------------------------------------------- robustness


def test_empty_and_odd_input() -> None:
    for text in ("", " ", "\n\n", "....", "+", "-59", "x2", "İİİ 76942", "\x00 76942 \ud7ff"):
        c = extract(text)
        assert isinstance(c, Claims)
    assert codes("İİİ 76942") == ["76942"]


def test_long_input_is_capped() -> None:
    text = ("Report 20611; do not add 76942. " * 5000) + " 93306"
    c = extract(text)
    assert len(c.text) == MAX_TEXT_CHARS
    assert "93306" not in c.codes()


def test_pasted_code_list_does_not_explode_pairs() -> None:
    text = " + ".join(str(10000 + i) for i in range(2000))
    c = extract(text)
    assert len(c.mentions) == 2000
    assert len(c.pairs) <= 16 * 15 // 2


# ----------------------------------------------------------------------------- claim lines


@pytest.mark.parametrize(
    ("token", "code", "kind", "mods", "units", "plus"),
    [
        ("20610", "20610", CodeKind.CPT, (), 1, False),
        ("+76937", "76937", CodeKind.CPT, (), 1, True),
        ("93971-50", "93971", CodeKind.CPT, ("50",), 1, False),
        ("20611-RT", "20611", CodeKind.CPT, ("RT",), 1, False),
        ("76942-59x2", "76942", CodeKind.CPT, ("59",), 2, False),
        ("37253x6", "37253", CodeKind.CPT, (), 6, False),
        ("37253X6", "37253", CodeKind.CPT, (), 6, False),
        ("76641-50-RT", "76641", CodeKind.CPT, ("50", "RT"), 1, False),
        ("20610-rt", "20610", CodeKind.CPT, ("RT",), 1, False),
        ("0346t", "0346T", CodeKind.CATEGORY_III, (), 1, False),
        ("G0389", "G0389", CodeKind.HCPCS, (), 1, False),
        (" J3301x4 ", "J3301", CodeKind.HCPCS, (), 4, False),
    ],
)
def test_parse_claim_line(
    token: str, code: str, kind: CodeKind, mods: tuple[str, ...], units: int, plus: bool
) -> None:
    line = parse_claim_line(token)
    assert (line.code, line.kind, line.modifiers, line.units, line.add_on_mark) == (
        code,
        kind,
        mods,
        units,
        plus,
    )


@pytest.mark.parametrize(
    "token", ["7694", "abc", "76942-ZZ", "76942x0", "", "769421", "76942x", "76942-", "Z1234"]
)
def test_parse_claim_line_rejects(token: str) -> None:
    with pytest.raises(MalformedCode):
        parse_claim_line(token)


def test_malformed_code_message_says_what_a_code_looks_like() -> None:
    with pytest.raises(MalformedCode) as exc:
        parse_claim_line("7694")
    msg = str(exc.value)
    assert "'7694' is not a code" in msg
    assert "5 digits (76942)" in msg
    assert "0346T" in msg
    assert "G0389" in msg
    with pytest.raises(MalformedCode, match="unknown modifier 'ZZ'"):
        parse_claim_line("76942-ZZ")
    with pytest.raises(MalformedCode, match="units must be"):
        parse_claim_line("76942x0")


def test_parse_claim_lines_splits_and_attaches() -> None:
    lines = parse_claim_lines(["20610 76942", "37253 x6,93971", "-50", "+76937"])
    assert [(ln.code, ln.modifiers, ln.units, ln.add_on_mark) for ln in lines] == [
        ("20610", (), 1, False),
        ("76942", (), 1, False),
        ("37253", (), 6, False),
        ("93971", ("50",), 1, False),
        ("76937", (), 1, True),
    ]
    with pytest.raises(MalformedCode):
        parse_claim_lines(["20610", "7694"])
    assert parse_claim_lines([]) == []
