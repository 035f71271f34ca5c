"""The model reply cache that `advisor eval --replay` uses: one prompt, one kept reply."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fakes import FakeRetriever, ScriptedChatModel, passage

from advisor.pipeline import Advisor
from advisor.replies import ReplyCache
from advisor.settings import Settings
from knowledge.catalog import load_catalog

KNEE = [passage("aaaa1111", "Joint injections with ultrasound guidance use 20611.", ["20611"])]
DRAFT = {"codes": [{"code": "20611", "units": 1, "citations": ["P1"]}],
         "answer": "Report 20611 alone for the guided knee injection."}


@pytest.fixture(scope="module")
def catalog() -> Any:
    return load_catalog()


def advisor(tmp_path: Any, catalog: Any, replies: list[Any]) -> tuple[Advisor, ScriptedChatModel]:
    model = ScriptedChatModel(replies=list(replies))
    adv = Advisor(Settings(data_dir=tmp_path, backend="embedded", llm_timeout_s=5),
                  catalog=catalog, retriever=FakeRetriever(catalog, ["20610", "20611"], KNEE),
                  model=model)
    return adv, model


def test_a_kept_reply_answers_the_same_prompt_without_the_model(tmp_path, catalog) -> None:
    path = tmp_path / "replies.jsonl"
    first, model1 = advisor(tmp_path, catalog, [DRAFT])
    first.replies = ReplyCache(path, first.backend_label())
    a1 = first.ask("What do I bill for an ultrasound-guided knee injection?")
    assert len(model1.calls) == 1 and first.replies.misses == 1 and len(first.replies) == 1

    # A new process: the file is read back, and the model (with nothing scripted) is not asked.
    second, model2 = advisor(tmp_path, catalog, [])
    second.replies = ReplyCache(path, second.backend_label())
    a2 = second.ask("What do I bill for an ultrasound-guided knee injection?")
    assert model2.calls == []
    assert second.replies.hits == 1 and second.replies.misses == 0
    assert [(c.code, c.status) for c in a2.codes] == [(c.code, c.status) for c in a1.codes]
    assert "1 replayed" in second.replies.summary()


def test_another_prompt_or_model_misses(tmp_path, catalog) -> None:
    path = tmp_path / "replies.jsonl"
    adv, _ = advisor(tmp_path, catalog, [DRAFT])
    adv.replies = ReplyCache(path, adv.backend_label())
    adv.ask("What do I bill for an ultrasound-guided knee injection?")

    other, model = advisor(tmp_path, catalog, [DRAFT])
    other.replies = ReplyCache(path, adv.backend_label())
    other.ask("What do I bill for an ultrasound-guided shoulder injection?")
    assert len(model.calls) == 1 and other.replies.misses == 1

    cache = ReplyCache(path, "openai:another-model")
    key = cache.key("draft", [], {}, 100)
    assert key != ReplyCache(path, adv.backend_label()).key("draft", [], {}, 100)


def test_a_line_cut_short_by_a_crash_is_skipped(tmp_path) -> None:
    path = tmp_path / "replies.jsonl"
    cache = ReplyCache(path, "embedded:default")
    cache.put("k1", {"codes": []})
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"key": "k2", "reply": {"co')
    again = ReplyCache(path, "embedded:default")
    assert len(again) == 1 and again.get("k1") == {"codes": []} and again.get("k2") is None
    # A kept reply is handed out as a copy: a caller changing it does not change the cache.
    got = again.get("k1")
    assert got is not None
    got["codes"].append("x")
    assert again.get("k1") == {"codes": []}
    assert json.loads(path.read_text().splitlines()[0])["key"] == "k1"
