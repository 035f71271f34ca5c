"""Imports point one way: app.py -> advisor -> guardrails -> knowledge (README, "How it is built").

Every import counts, at any depth (inside functions and TYPE_CHECKING blocks too): a lower
layer never names a higher one. The checker (guardrails) stays pure: no model, store, UI,
network, process or file I/O library, and no open().
"""

from __future__ import annotations

import ast
import importlib.metadata
from pathlib import Path

import pytest
from helpers import REPO

LAYER = {"knowledge": 0, "guardrails": 1, "advisor": 2, "app": 3}

# What the checker must never import (its purity: no model, store, UI, network, processes,
# files or environment).
NOT_IN_GUARDRAILS = {
    "langchain", "langchain_core", "langchain_community", "langchain_openai", "langchain_ollama",
    "chromadb", "gradio", "gradio_client", "llama_cpp", "torch", "sentence_transformers",
    "transformers", "openai", "ollama", "httpx", "requests", "urllib", "http", "socket",
    "sqlite3", "subprocess", "shutil", "tempfile", "os",
}
# The knowledge base loads data; it never reaches a model, a store or the UI.
NOT_IN_KNOWLEDGE = {
    "langchain", "langchain_core", "chromadb", "gradio", "gradio_client", "llama_cpp", "torch",
    "sentence_transformers", "openai", "ollama",
}


def _modules() -> list[tuple[str, Path]]:
    out = [("app", REPO / "app.py")]
    for pkg in ("knowledge", "guardrails", "advisor"):
        out += [(pkg, p) for p in sorted((REPO / pkg).rglob("*.py"))]
    return out


def _imports(path: Path) -> list[tuple[str, int]]:
    """Top-level names of every absolute import in a file, with line numbers."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name.split(".")[0], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module.split(".")[0], node.lineno))
    return found


MODULES = _modules()


@pytest.mark.parametrize(("layer", "path"), MODULES,
                         ids=[str(p.relative_to(REPO)) for _, p in MODULES])
def test_imports_point_one_way(layer: str, path: Path) -> None:
    upward = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for name, line in _imports(path)
        if name in LAYER and LAYER[name] > LAYER[layer]
    ]
    assert upward == []


def test_the_checker_imports_no_model_store_ui_or_io() -> None:
    bad = []
    for layer, path in MODULES:
        forbidden = {"guardrails": NOT_IN_GUARDRAILS, "knowledge": NOT_IN_KNOWLEDGE}.get(layer)
        if forbidden is None:
            continue
        bad += [f"{path.relative_to(REPO)}:{line} imports {name}"
                for name, line in _imports(path) if name in forbidden]
        if layer == "guardrails":
            tree = ast.parse(path.read_text(encoding="utf-8"))
            bad += [f"{path.relative_to(REPO)}:{n.lineno} calls open()" for n in ast.walk(tree)
                    if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "open"]
    assert bad == []


def test_the_scan_sees_imports_at_any_depth(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import advisor.x\n"
                 "def f():\n    from app import main\n", encoding="utf-8")
    assert {name for name, _ in _imports(f)} == {"typing", "advisor", "app"}


def test_the_import_names_are_this_project() -> None:
    # `guardrails` is also the import name of guardrails-ai (and `advisor`, `knowledge` are
    # common words): the installed distribution that provides each name must be this one,
    # or two packages would overwrite each other (pyproject.toml, [tool.setuptools]).
    owners = importlib.metadata.packages_distributions()
    for name in ("advisor", "guardrails", "knowledge"):
        assert set(owners.get(name, ())) == {"us-coding-advisor"}, (name, owners.get(name))
        module = __import__(name)
        assert Path(module.__file__).resolve().is_relative_to(REPO), module.__file__
