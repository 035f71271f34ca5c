"""The deterministic checker: pure functions over a draft and the catalog, no model, no I/O.

The front door for a claim is :func:`check_claim`; the round policy for drafted answers is
:mod:`guardrails.policy`. Names are loaded on first use, so importing a submodule (the
result types in :mod:`guardrails.report`) does not load every rule.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from guardrails.checker import check
    from guardrails.front import check_claim, draft_of
    from guardrails.repair import Outcome, check_and_repair

__all__ = ["Outcome", "check", "check_and_repair", "check_claim", "draft_of"]

_HOME = {
    "check": "guardrails.checker",
    "check_claim": "guardrails.front",
    "draft_of": "guardrails.front",
    "check_and_repair": "guardrails.repair",
    "Outcome": "guardrails.repair",
}


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first use."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'guardrails' has no attribute {name!r}")
    return getattr(import_module(home), name)
