"""Read YAML data into pydantic models, reporting errors with file and line.

Broken data fails loudly and whole: :func:`load_model` raises :class:`KnowledgeError`
listing every problem as ``file:line: field: message``; nothing is half-loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class KnowledgeError(Exception):
    """The knowledge data is broken; ``problems`` lists each one with file and line."""

    retryable = False

    def __init__(self, problems: list[str]) -> None:
        """Keep the problem list; the message shows them all."""
        self.problems = problems
        super().__init__(
            "knowledge data is invalid:\n  "
            + "\n  ".join(problems)
            + "\nFix the file(s) above, then run: advisor kb validate"
        )


def _child(node: yaml.Node, part: int | str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                found: yaml.Node = value
                return found
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
        if 0 <= part < len(node.value):
            item: yaml.Node = node.value[part]
            return item
    return None


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """Follow a pydantic error location through the YAML node tree; 1-based line.

    A location part that names no node (a union tag, or a missing key) is skipped, so the
    line points at the deepest enclosing node found.
    """
    if node is None:
        return None
    best = node.start_mark.line + 1
    for part in loc:
        child = _child(node, part)
        if child is None:
            continue
        node = child
        best = node.start_mark.line + 1
    return best


_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Located:
    """A parsed file whose node tree (for line numbers) is built only when an error needs it."""

    def __init__(self, path: Path, text: str) -> None:
        """Keep the text; compose nodes lazily."""
        self.path = path
        self._text = text
        self._node: yaml.Node | None = None

    @property
    def node(self) -> yaml.Node | None:
        """The YAML node tree (composed on first use)."""
        if self._node is None:
            self._node = yaml.compose(self._text, Loader=_Loader)
        return self._node


def read_yaml(path: Path) -> tuple[Any, Located]:
    """Parse a YAML file into plain data and a lazy locator for line numbers."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeError([f"{path}: cannot read: {exc}"]) from exc
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise KnowledgeError([f"{where}: YAML syntax error: {exc}"]) from exc
    return data, Located(path, text)


def load_model(path: Path, model: type[M]) -> tuple[M, Located]:
    """Validate a YAML file against ``model``; errors carry file and line."""
    data, located = read_yaml(path)
    try:
        return model.model_validate(data if data is not None else {}), located
    except ValidationError as exc:
        node = located.node
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = _line_of(node, loc)
            field = ".".join(str(p) for p in loc) or "(top level)"
            where = f"{path}:{line}" if line else str(path)
            problems.append(f"{where}: {field}: {err['msg']}")
        raise KnowledgeError(problems) from None


def line_of(located: Located, *loc: int | str) -> int | None:
    """Line of a location in a parsed file, for cross-reference errors."""
    return _line_of(located.node, tuple(loc))


def line_of_node(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """Line of a location in a YAML node tree (for other YAML formats, e.g. suites)."""
    return _line_of(node, loc)
