"""Structured model calls: a JSON reply checked against the task's schema, with client errors
turned into the model layer's errors (:class:`ModelTimeout`, :class:`ModelUnavailable`,
:class:`ModelOutputError`)."""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    BaseMessage,
)

from advisor.gguf import (
    ModelError,
    ModelOutputError,
    ModelTimeout,
    ModelUnavailable,
)

if TYPE_CHECKING:
    pass

from advisor.llama import LlamaCppChatModel, _message_text

log = logging.getLogger(__name__)

# ------------------------------------------------------------------ structured calls


@contextlib.contextmanager
def _translated_errors(model: BaseChatModel) -> Iterator[None]:
    """Turn client-library exceptions into the model layer's errors."""
    where = _endpoint(model)
    try:
        yield
    except ModelError:
        raise
    except Exception as exc:
        mapped = _map_exception(exc, where)
        if mapped is None:
            raise
        raise mapped from exc


def _endpoint(model: BaseChatModel) -> str:
    for attr in ("openai_api_base", "base_url"):
        value = getattr(model, attr, None)
        if value:
            return str(value)
    return type(model).__name__


def _map_exception(exc: Exception, where: str) -> ModelError | None:
    """The model-layer error for a client exception, or None to let it through.

    langchain-openai raises langchain-core's ``Model*Error`` classes; the openai, httpx
    and ollama clients underneath raise their own, which are matched too.
    """
    from langchain_core import exceptions as lc

    name = type(exc).__name__
    module = type(exc).__module__
    client = module.startswith(("openai", "httpx", "httpcore", "ollama", "langchain_openai"))
    text = str(exc)
    if isinstance(exc, lc.ModelTimeoutError) or (client and "Timeout" in name):
        return ModelTimeout(
            f"The model server at {where} did not answer within the time limit. Try again, "
            "raise ADVISOR_LLM_TIMEOUT_S, or use a smaller model."
        )
    if name == "LengthFinishReasonError":  # openai: the reply hit max_tokens mid-JSON
        completion = getattr(exc, "completion", None)
        raw = ""
        if completion is not None and getattr(completion, "choices", None):
            raw = completion.choices[0].message.content or ""
        return ModelOutputError(
            f"The answer from the model at {where} was cut off at the token limit before its "
            "JSON was complete. Ask again, or raise ADVISOR_MAX_TOKENS.",
            raw=raw,
        )
    if isinstance(exc, lc.ContextOverflowError):
        return ModelUnavailable(
            f"The prompt does not fit the context window of the model at {where}. Ask a "
            "shorter question, retrieve fewer passages (ADVISOR_RETRIEVAL_K), or use a model "
            "with a longer context."
        )
    if isinstance(exc, lc.ModelConnectionError | ConnectionError) or (
        client and name in {"APIConnectionError", "ConnectError"}
    ):
        return ModelUnavailable(
            f"Cannot reach the model server at {where} ({text}). Start the server or fix its "
            "URL in settings, or use ADVISOR_BACKEND=embedded.",
            retryable=True,
        )
    if isinstance(exc, lc.ModelAuthenticationError | lc.ModelPermissionDeniedError) or (
        client and name in {"AuthenticationError", "PermissionDeniedError"}
    ):
        return ModelUnavailable(
            f"The model server at {where} refused the request ({text}). Set "
            "ADVISOR_OPENAI_API_KEY to a key it accepts."
        )
    if isinstance(exc, lc.ModelNotFoundError) or (client and name == "NotFoundError"):
        return ModelUnavailable(
            f"The model server at {where} does not serve the configured model ({text}). "
            "Check ADVISOR_OPENAI_MODEL."
        )
    if module.startswith("ollama") and name == "ResponseError":
        if getattr(exc, "status_code", None) == 404:
            return ModelUnavailable(
                f"Ollama at {where} does not have the model ({text}). Run `ollama pull` for "
                "it or change ADVISOR_OLLAMA_MODEL."
            )
        return ModelUnavailable(f"Ollama at {where} failed ({text}).", retryable=True)
    if isinstance(exc, lc.ModelRateLimitError | lc.ModelAPIError) or (
        client and name in {"RateLimitError", "InternalServerError"}
    ):
        return ModelUnavailable(
            f"The model server at {where} failed ({text}). Try again later.", retryable=True
        )
    return None


def _invoke(model: BaseChatModel, messages: LanguageModelInput, **kwargs: Any) -> BaseMessage:
    with _translated_errors(model):
        return model.invoke(messages, **kwargs)


def text_call(
    model: BaseChatModel,
    messages: LanguageModelInput,
    *,
    timeout_s: float | None = None,
    max_tokens: int | None = None,
) -> str:
    """Free-text answer of ``model``, with errors mapped to the model layer's classes.

    ``max_tokens`` caps this call where the backend takes a per-call limit (embedded and
    OpenAI-compatible); Ollama keeps the limit it was built with.
    """
    kwargs = _timeout_kwargs(model, timeout_s)
    if max_tokens is not None and (isinstance(model, LlamaCppChatModel) or _is_openai(model)):
        kwargs["max_tokens"] = max_tokens
    return _message_text(_invoke(model, messages, **kwargs))


def _timeout_kwargs(model: BaseChatModel, timeout_s: float | None) -> dict[str, Any]:
    if timeout_s is None:
        return {}
    if isinstance(model, LlamaCppChatModel):
        return {"timeout_s": timeout_s}
    if _is_openai(model):
        return {"timeout": timeout_s}  # a per-request option of the openai client
    # ChatOllama takes its time limit from client_kwargs at construction only.
    return {}


def _is_openai(model: BaseChatModel) -> bool:
    return type(model).__module__.startswith("langchain_openai")


def _is_ollama(model: BaseChatModel) -> bool:
    return type(model).__module__.startswith("langchain_ollama")


def structured_call(
    model: BaseChatModel,
    messages: LanguageModelInput,
    schema: dict[str, Any],
    *,
    timeout_s: float | None = None,
    request_schema: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Ask ``model`` for a JSON object matching ``schema`` and return it parsed.

    ``request_schema`` (default ``schema``) is what the backend's constrained decoding is
    handed, e.g. a schema narrowed to candidate codes; the reply is still validated against
    the broader ``schema``, so an answer outside the narrowed one is not lost here.

    Uses each backend's constrained decoding: llama.cpp's ``response_format`` with a
    schema, OpenAI's ``json_schema`` response format (falling back to ``json_object``
    with a schema for servers that only know that form), Ollama's ``format``. Any other
    chat model is asked plainly and its answer parsed. Raises ModelOutputError if the
    answer is not a JSON object matching the schema's types and required keys.
    """
    kwargs = _timeout_kwargs(model, timeout_s)
    asked = request_schema if request_schema is not None else schema
    if isinstance(model, LlamaCppChatModel):
        reply = _invoke(
            model, messages, response_format={"type": "json_object", "schema": asked}, **kwargs
        )
    elif _is_openai(model):
        reply = _openai_structured(model, messages, asked, kwargs)
    elif _is_ollama(model):
        reply = _invoke(model, messages, format=asked, **kwargs)
    else:
        reply = _invoke(model, messages, **kwargs)
    return parse_json_reply(_message_text(reply), schema)


# Endpoints that rejected the ``json_schema`` response format; asked in the older form
# straight away afterwards, sparing a failed request per call.
_json_object_only: set[str] = set()


def _openai_structured(
    model: BaseChatModel, messages: LanguageModelInput, schema: dict[str, Any], kwargs: Any
) -> BaseMessage:
    import openai

    endpoint = _endpoint(model)
    if endpoint not in _json_object_only:
        json_schema = {
            "type": "json_schema",
            "json_schema": {"name": str(schema.get("title") or "response"), "schema": schema},
        }
        try:
            with _translated_errors_except_schema_rejection(model):
                return model.invoke(messages, response_format=json_schema, **kwargs)
        except openai.APIStatusError as exc:
            # llama-cpp-python's server, for one, only knows json_object with a schema.
            log.info("%s rejected the json_schema response format (%s)", endpoint, exc)
            _json_object_only.add(endpoint)
    return _invoke(
        model, messages, response_format={"type": "json_object", "schema": schema}, **kwargs
    )


def _rejects_json_schema(exc: BaseException) -> bool:
    """True if a server refused the request because it does not know ``json_schema``."""
    import openai

    if not isinstance(exc, openai.APIStatusError):
        return False
    if exc.status_code == 422:  # request validation failed: the format is unknown
        return True
    # Other servers say so in a 400, llama-cpp-python's in a 500; other 400s and 500s
    # (an overlong prompt, a crash) must not be mistaken for it.
    text = str(exc)
    return exc.status_code in {400, 500} and ("response_format" in text or "json_schema" in text)


@contextlib.contextmanager
def _translated_errors_except_schema_rejection(model: BaseChatModel) -> Iterator[None]:
    try:
        with _translated_errors(model):
            yield
    except ModelError as exc:
        if _rejects_json_schema(exc.__cause__ or exc):
            raise exc.__cause__ from None  # type: ignore[misc]
        raise


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_json_reply(text: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """Parse a model's JSON answer (tolerating a Markdown code fence) and check it."""
    match = _FENCE.match(text)
    body = match.group(1) if match else text.strip()
    try:
        # strict=False: a raw newline or tab inside a string (which constrained decoding
        # lets through) is text, not a reason to lose the whole draft.
        value = json.loads(body, strict=False)
    except ValueError as exc:
        salvaged = _complete_codes(body)
        if salvaged is not None and (schema is None or not schema_problems(salvaged, schema)):
            log.warning("model reply cut short (%s); its complete code list is used", exc)
            return salvaged
        raise ModelOutputError(
            f"The model's answer is not valid JSON ({exc}). Ask again; if it keeps "
            "happening, use a larger model or a backend with structured output.",
            raw=text,
        ) from exc
    if not isinstance(value, dict):
        raise ModelOutputError(
            f"The model answered with JSON {type(value).__name__}, not an object. Ask again.",
            raw=text,
        )
    if schema is not None:
        problems = schema_problems(value, schema)
        if problems:
            raise ModelOutputError(
                "The model's JSON does not match the requested schema: "
                + "; ".join(problems[:5])
                + ". Ask again, or use a backend with structured output.",
                raw=text,
            )
    return value


_CODES_KEY = re.compile(r'^\s*\{\s*"codes"\s*:\s*')


_ITEM_GAP = re.compile(r"\s*[\[,]\s*")


def _complete_codes(body: str) -> dict[str, Any] | None:
    """From a draft cut off (the token limit), the code lines it finished, without prose.

    Drafts write "codes" first and the answer after; when the answer is cut, the codes the
    model chose are intact and still go to the checker. When the list itself is cut (a small
    model looping inside its second line), the lines before the cut are kept.
    """
    m = _CODES_KEY.match(body)
    if m is None:
        return None
    decoder = json.JSONDecoder(strict=False)
    try:
        codes, _ = decoder.raw_decode(body, m.end())
    except ValueError:
        codes, pos = [], m.end()
        while (gap := _ITEM_GAP.match(body, pos)) is not None:
            try:
                item, pos = decoder.raw_decode(body, gap.end())
            except ValueError:
                break
            if not isinstance(item, dict):
                return None
            codes.append(item)
        if not codes:
            return None
    return {"codes": codes, "answer": ""} if isinstance(codes, list) else None


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def schema_problems(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Differences between ``value`` and the common subset of JSON Schema we send.

    Checks ``type``, ``enum``, ``required``, ``properties`` and ``items``; other keywords
    are left to the backend's constrained decoding.
    """
    problems: list[str] = []
    expected = schema.get("type")
    if expected is not None:
        names = expected if isinstance(expected, list) else [expected]
        allowed = tuple(t for n in names for t in _JSON_TYPES.get(n, (object,)))
        is_bool = isinstance(value, bool)
        if not isinstance(value, allowed) or (is_bool and "boolean" not in names):
            return [f"{path} should be {' or '.join(names)}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path} should be one of {schema['enum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                problems.append(f"{path}.{key} is missing")
        for key, sub in schema.get("properties", {}).items():
            if key in value and isinstance(sub, dict):
                problems.extend(schema_problems(value[key], sub, f"{path}.{key}"))
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            problems.extend(schema_problems(item, schema["items"], f"{path}[{i}]"))
    return problems


