"""Fixtures shared by unit test modules."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import pytest
from helpers import REPO

from guardrails.report import Finding, OnFail, Severity
from knowledge.catalog import clear_cache


@dataclass
class Observed:
    """Every finding constructed while observing: (rule, severity, on_fail) triples."""

    seen: set[tuple[str, Severity, OnFail]] = field(default_factory=set)

    def rules(self) -> set[str]:
        return {str(r) for r, _, _ in self.seen}


def _observing(mp: pytest.MonkeyPatch, observed: Observed) -> None:
    real = Finding.__init__

    def init(self: Finding, *args: object, **kwargs: object) -> None:
        real(self, *args, **kwargs)  # type: ignore[arg-type]
        observed.seen.add((str(self.rule), self.severity, self.on_fail))

    mp.setattr(Finding, "__init__", init)


@pytest.fixture
def observe_findings(monkeypatch: pytest.MonkeyPatch) -> Observed:
    """Record every Finding any code constructs during the test."""
    observed = Observed()
    _observing(monkeypatch, observed)
    return observed


@dataclass
class GoldenRun:
    """The golden snapshot built once per session, with the findings it produced."""

    records: dict[str, list[tuple[str, str]]]
    observed: Observed


@pytest.fixture(scope="session")
def golden_run() -> GoldenRun:
    """tests/golden/snapshot.py's build, observed (shared by the snapshot and registry tests)."""
    sys.path.insert(0, str(REPO / "tests" / "golden"))
    import snapshot

    observed = Observed()
    with pytest.MonkeyPatch.context() as mp:
        _observing(mp, observed)
        records = snapshot.build()
    return GoldenRun(records, observed)


@pytest.fixture
def private_data_dir(tmp_path, monkeypatch):
    """An empty data directory of the test's own (ADVISOR_DATA_DIR), with the catalog cache
    cleared before and after, so no test reads another's catalog or audit data."""
    monkeypatch.setenv("ADVISOR_DATA_DIR", str(tmp_path / "data"))
    clear_cache()
    yield
    clear_cache()
