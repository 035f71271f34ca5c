"""Coverage-guided fuzzing (atheris / libFuzzer) of the code parsers a person types into.

    .venv/bin/python tests/fuzz/fuzz_claims.py -runs=200000        # or -max_total_time=600

Targets: guardrails.claims.parse_claim_lines (`advisor check`) and advisor.lookup.
normalize_code (`advisor lookup`). The only accepted failure is the documented bad-input
error; anything else is a crash, reported with the input that caused it (libFuzzer saves
it as crash-<sha1> in the current folder). tests/unit/test_cli_fuzz.py runs this briefly.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

with atheris.instrument_imports():
    from advisor.lookup import MalformedCodeError, normalize_code
    from guardrails.claims import MAX_UNITS, MODIFIERS, MalformedCode, parse_claim_lines


def one_input(data: bytes) -> None:
    """Parse the input as claim tokens and as a lookup code; check what comes back."""
    fdp = atheris.FuzzedDataProvider(data)
    tokens = fdp.ConsumeUnicodeNoSurrogates(200).split("\x00")
    try:
        lines = parse_claim_lines(tokens)
    except MalformedCode:
        lines = []
    for ln in lines:
        if not (len(ln.code) == 5 and 1 <= ln.units <= MAX_UNITS
                and set(ln.modifiers) <= MODIFIERS):
            raise AssertionError(f"bad claim line {ln!r} from {tokens!r}")
    for token in tokens:
        try:
            code = normalize_code(token)
        except MalformedCodeError:
            continue
        if len(code) != 5:
            raise AssertionError(f"bad lookup code {code!r} from {token!r}")


def main() -> None:
    """Run libFuzzer with the command-line flags given (e.g. -runs=N)."""
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
