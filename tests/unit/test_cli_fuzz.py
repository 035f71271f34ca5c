"""Fuzzing what a person types as codes: claim lines, code lookups, code-only questions.

Property tests (hypothesis, bounded example counts) over the parsers behind `advisor check`,
`advisor lookup` and the pipeline's code-only shortcut, and over `advisor check` itself:
they return a result or raise the one documented bad-input error, whose message says what
a code looks like; the command exits 0, 1 or 2 and never prints a traceback. Long
pathological inputs run under the per-test timeout, so a regex that backtracks without end
fails the test instead of hanging the suite. tests/fuzz/fuzz_claims.py is the same target
for atheris (coverage-guided); the last test runs it briefly.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from advisor.cli import app
from advisor.lookup import MalformedCodeError, normalize_code
from advisor.pipeline import parse_code_query
from guardrails.claims import MAX_UNITS, MODIFIERS, MalformedCode, parse_claim_lines
from knowledge.catalog import clear_cache

REPO = Path(__file__).resolve().parents[2]
FUZZ = settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
runner = CliRunner()

# Pieces a coder types, and a little of everything else.
PIECES = ["20610", "76942", "+76937", "0042T", "0346t", "G0389", "93971-50", "37253x6",
          "x6", "X2", "×3", "-59", "-RT", "-lt", "-26-59", "x0", "x1000", "-ZZ", "7694",
          "769421", "+", "-", "x", ",", ";", " ", "\t", "\n", "and", "abc", "１２３４５"]
typed = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=8)), max_size=12).map(
    "".join
)
tokens = st.lists(typed, max_size=6)


@pytest.fixture(scope="module", autouse=True)
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """`advisor check` reads no data dir but a fresh, empty one."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADVISOR_DATA_DIR", str(tmp_path_factory.mktemp("data")))
        clear_cache()
        yield
    clear_cache()


def check_lines(lines: list) -> None:  # type: ignore[type-arg]
    for ln in lines:
        assert len(ln.code) == 5 and ln.code.isascii() and ln.code.isalnum(), ln
        assert 1 <= ln.units <= MAX_UNITS, ln
        assert set(ln.modifiers) <= MODIFIERS, ln
        assert len(set(ln.modifiers)) == len(ln.modifiers), ln


@FUZZ
@given(tokens)
def test_claim_lines_parse_or_say_what_is_wrong(argv: list[str]) -> None:
    message = ""
    try:
        check_lines(parse_claim_lines(argv))
    except MalformedCode as exc:
        message = str(exc)
    assert message == "" or any(w in message for w in ("is not a code", "modifier", "units"))


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["20610", "76942", "0042T", "G0389", "93971"]),
            st.lists(st.sampled_from(sorted(MODIFIERS)), max_size=3),
            st.one_of(st.none(), st.integers(1, MAX_UNITS)),
            st.booleans(),
        ),
        min_size=1,
        max_size=5,
    ),
    st.sampled_from([" ", ",", ", ", ";"]),
)
def test_separate_units_and_modifiers_attach_to_the_line_before(lines, sep: str) -> None:  # type: ignore[no-untyped-def]
    """'37253 x6 -59' is read as '37253-59x6', whatever the spacing."""
    joined = []
    for code, mods, units, split in lines:
        suffix = [f"-{m}" for m in mods] + ([f"x{units}"] if units is not None else [])
        joined.append(sep.join([code, *suffix]) if split else code + "".join(suffix))
    parsed = parse_claim_lines([sep.join(joined)])
    assert [p.code for p in parsed] == [c for c, *_ in lines]
    for p, (_, mods, units, _) in zip(parsed, lines, strict=True):
        assert p.modifiers == tuple(dict.fromkeys(mods))
        assert p.units == (units or 1)


@FUZZ
@given(typed)
def test_lookup_codes_normalize_or_say_what_a_code_is(text: str) -> None:
    message, code = "", ""
    try:
        code = normalize_code(text)
    except MalformedCodeError as exc:
        message = str(exc)
    if message:
        assert "is not a code" in message and "5 digits" in message
    else:
        assert len(code) == 5 and code == code.upper() and code in text.upper()


@FUZZ
@given(st.one_of(typed, st.text(max_size=80)))
def test_code_only_question_detection_never_raises(text: str) -> None:
    found = parse_code_query(text)
    if found is not None:
        assert found and all(t in text for t in found)


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(tokens.filter(lambda a: not any(t.startswith("-") for t in a)))
def test_advisor_check_exits_0_1_or_2_with_a_message(argv: list[str]) -> None:
    r = runner.invoke(app, ["check", *argv])
    assert r.exit_code in (0, 1, 2), (argv, r.output, r.exception)
    assert r.exception is None or isinstance(r.exception, SystemExit), (argv, r.exception)
    assert "Traceback" not in r.output
    if r.exit_code == 2:
        assert r.output.strip(), "bad input gets a message"


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "text",
    [
        "1" * 20000,
        "76942" + "-59" * 5000,
        "76942" + "-" * 20000,
        "x" * 20000 + "76942",
        "76942x" + "9" * 20000,
        " ".join(["76942"] * 5000),
        "+" * 20000,
        "-5" * 10000,
    ],
    ids=["digits", "many-mods", "dashes", "xs", "huge-units", "many-codes", "pluses", "dash-5"],
)
def test_long_pathological_input_ends(text: str) -> None:
    try:
        check_lines(parse_claim_lines([text]))
    except MalformedCode:
        pass
    parse_code_query(text)
    try:
        normalize_code(text)
    except MalformedCodeError:
        pass


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None,
                    reason="atheris has no wheel for this platform or Python")
def test_atheris_harness_runs_clean() -> None:
    done = subprocess.run(
        [sys.executable, "tests/fuzz/fuzz_claims.py", "-runs=20000", "-seed=1"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Done 20000 runs" in done.stderr
