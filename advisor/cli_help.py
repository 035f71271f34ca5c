"""Help text for the `advisor` command that wraps at the terminal width."""

from __future__ import annotations

import inspect

import typer


def reflow(doc: str | None) -> str | None:
    """A command's help as paragraphs that wrap at the terminal width: the line breaks
    inside a paragraph (from the source's line length) are joined, so no sentence breaks
    mid-line; an indented paragraph (examples) keeps its lines; '[' is escaped so text
    such as CODE[-MOD][xUNITS] is shown, not read as markup."""
    if not doc:
        return doc
    out = []
    for para in inspect.cleandoc(doc).split("\n\n"):
        if para.startswith((" ", "\b")):
            out.append(para)
        else:
            out.append(" ".join(line.strip() for line in para.splitlines()))
    return "\n\n".join(out).replace("[", "\\[")


def reflow_all(typer_app: typer.Typer) -> None:
    """Every command's help (groups included) reflowed, unless it was given as help=."""
    for info in typer_app.registered_commands:
        if info.callback is not None and info.help is None:
            info.help = reflow(inspect.getdoc(info.callback))
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            reflow_all(group.typer_instance)
