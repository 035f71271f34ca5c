"""The `advisor` command: lookups and claim checks for coders, index, search, ask, serve.

Heavy modules (Chroma, torch, llama.cpp, gradio) are imported inside the commands that
need them, so `advisor lookup` and `advisor check` start fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="advisor",
    help=(
        "Ultrasound CPT coding advisor.\n\n"
        "Every code it shows is checked by deterministic rules and carries a verdict "
        "(verified / corrected / removed / not verified) and the source of the rule.\n\n"
        "Examples:\n\n"
        "  advisor lookup 76937\n      what the ruleset knows about a code\n\n"
        "  advisor check 20610 76942\n      scrub a claim (exit 0 pass, 1 fail or review, "
        "2 bad input)\n\n"
        "  advisor check 93971-50 37253x6\n      modifiers with '-', units with 'x'\n\n"
        "  advisor check --file claims.txt\n      many claims, one a line\n\n"
        "  advisor check --text 'Bill 20610 + 76942 for the knee.'\n\n"
        "  advisor kb validate\n      check the knowledge base"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
kb_app = typer.Typer(help="Inspect and validate the knowledge base.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


@app.callback()
def _main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log progress (INFO) to stderr.")
    ] = False,
) -> None:
    """Set up logging (PHI masked) before any command reads a question or a file."""
    import logging

    from advisor.logging_setup import setup_logging

    level = logging.INFO if verbose else logging.WARNING
    setup_logging(level, "%(levelname)s %(name)s: %(message)s")


def _emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def _fail(msg: str, code: int) -> None:
    typer.echo(msg, err=True)
    raise typer.Exit(code)


def _catalog() -> Any:
    from advisor.settings import load_settings
    from knowledge.catalog import load_catalog
    from knowledge.cms import CmsStoreError
    from knowledge.loader import KnowledgeError

    settings = load_settings()
    cms_dir = settings.cms_dir if settings.cms_dir.exists() else None
    try:
        return load_catalog(cms_dir=cms_dir)
    except KnowledgeError as exc:
        _fail(str(exc), 2)
    except CmsStoreError as exc:
        _fail(str(exc), 1)


@app.command()
def lookup(
    codes: Annotated[list[str], typer.Argument(help="One or more codes, e.g. 76937 20611.")],
    as_json: JsonOpt = False,
    all_pairs: Annotated[
        bool, typer.Option("--all", help="Show every pair edit (text shows the first 12).")
    ] = False,
) -> None:
    """Everything the ruleset knows about codes: label, extent, add-on, pairs, limits, sources.

    Pair edits list the most asked first: an add-on with its primaries, a procedure with
    the guidance it includes, a guidance code with the procedures that include it. --json
    gives a list of records, one a code, for one code or several.

    Exit status: 0 all known, 1 an unknown code, 2 malformed input (e.g. 7694, abc).
    """
    from advisor.lookup import MalformedCodeError, format_lookup, normalize_code
    from advisor.lookup import lookup as do_lookup

    try:
        normalized = [normalize_code(c) for raw in codes for c in raw.replace(",", " ").split()]
    except MalformedCodeError as exc:
        _fail(str(exc), 2)
    catalog = _catalog()
    records = [do_lookup(c, catalog) for c in normalized]
    if as_json:
        _emit_json(records)
    else:
        typer.echo("\n\n".join(format_lookup(r, all_pairs=all_pairs) for r in records))
    if any(r["status"] == "unknown" for r in records):
        if not as_json:
            typer.echo("\nAn unknown code cannot be verified; check it in the current code set.",
                       err=True)
        raise typer.Exit(1)


@app.command()
def check(
    codes: Annotated[
        list[str] | None,
        typer.Argument(help="One claim as keyed: CODE\\[-MOD...]\\[xUNITS], e.g. 93971-50 "
                       "37253x6 or 20610+76942; '-' reads many claims from stdin, one a line."),
    ] = None,
    text: Annotated[
        str | None,
        typer.Option("--text", help="A drafted answer to scrub ('-' reads it from stdin)."),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Many claims, one a line ('-' for stdin); a CSV with a "
                     "'code' column has one claim line a row, claims grouped by an id "
                     "column or separated by blank lines."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Scrub a claim (codes with modifiers and units) or a drafted text against the rules.

    With --file (or '-'), each line is its own claim: one result a claim (JSON lines with
    --json), then a summary. A line with words is read as a drafted sentence.

    Exit status: 0 pass, 1 fail, review or nothing checked, 2 bad input (a batch: any bad
    line, the others still checked).
    """
    from guardrails import check_claim
    from guardrails.claims import MalformedCode

    if codes == ["-"] and file is None:
        codes, file = None, Path("-")
    if file is not None and (codes or text is not None):
        _fail("Give --file alone: its lines are the claims (codes and --text check one).", 2)
    if file is not None:
        _check_batch(file, as_json)
        return
    body = sys.stdin.read() if text == "-" else (text or "")
    if not codes and not body.strip():
        _fail("Nothing to check: give codes (e.g. `advisor check 20610 76942`), --text, or "
              "--file with one claim a line.", 2)
    from advisor.batch import checked_data, split_keyed

    catalog = _catalog()
    try:
        keyed = [t for c in codes or [] for t in split_keyed(c)]
        outcome = check_claim(keyed, catalog, text=body)
    except MalformedCode as exc:
        _fail(str(exc), 2)
    result = checked_data(outcome)
    if as_json:
        _emit_json(result)
    elif result["verdict"] == "empty":
        typer.echo("Nothing was checked: no code was found in the text. Give the codes "
                   "(e.g. `advisor check 20610 76942`) or a text that names them.")
    else:
        from advisor.render import format_outcome

        typer.echo(format_outcome(outcome, catalog))
    raise typer.Exit(0 if result["verdict"] == "pass" else 1)


def _check_batch(file: Path, as_json: bool) -> None:
    """`advisor check --file`: one claim a line, one result a claim, a summary at the end."""
    from advisor import batch

    try:
        lines = batch.read_lines(file)
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"Cannot read {file}: {exc}", 2)
    csv_mode = True if file.suffix.lower() == ".csv" else None  # else: by the first line
    summary = batch.run(lines, _catalog(), sys.stdout.write, as_json=as_json, csv_mode=csv_mode)
    if not summary.claims:
        _fail(f"Nothing to check: {file} holds no claim (one claim a line, e.g. "
              "'20610 76942').", 2)
    raise typer.Exit(summary.exit_code())


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="A coding question, or codes to check.")],
    as_json: JsonOpt = False,
    backend: Annotated[
        str | None,
        typer.Option("--backend", help="Chat backend: embedded, openai, ollama or none."),
    ] = None,
    no_llm: Annotated[
        bool, typer.Option("--no-llm", help="Answer from retrieval and rules only; no model.")
    ] = False,
) -> None:
    """Ask a coding question; the model drafts, the rules check every code it shows.

    Tokens stream to the terminal as the model drafts (unless --json); the checked answer
    follows. A question that is only codes ('20610 76942') is checked at once, no model.
    Exit status: 0 answered, 2 bad input (an empty question, one over
    ADVISOR_MAX_QUESTION_CHARS, a bad setting).
    """
    from pydantic import ValidationError

    from advisor.limits import InputRejected, check_question
    from advisor.pipeline import Advisor, Answer
    from advisor.settings import load_settings

    try:
        settings = load_settings(backend="none" if no_llm else backend)
    except ValidationError as exc:
        _fail(f"Bad setting: {exc.errors()[0].get('msg')}. Backends: embedded, openai, "
              "ollama, none.", 2)
    try:
        question = check_question(question, settings)
    except InputRejected as exc:
        _fail(str(exc), 2)
    if not question:
        _fail("Nothing to ask: give a coding question (e.g. advisor ask 'US-guided knee "
              "injection') or codes to check (e.g. advisor ask '20610 76942').", 2)
    advisor = Advisor(settings, catalog=_catalog())
    answer: Answer | None = None
    streamed = False
    for item in advisor.stream(question):
        if isinstance(item, Answer):
            answer = item
        elif not as_json:
            sys.stdout.write(item)
            sys.stdout.flush()
            streamed = True
    if answer is None:
        _fail("The advisor returned no answer.", 1)
    from advisor.audit import AuditEntry, open_audit

    # Recorded masked; a failed write waits in the spool, is logged and never blocks the answer.
    log_ = open_audit(settings)
    log_.record(AuditEntry.from_answer(answer))
    log_.close()
    if as_json:
        _emit_json(answer.to_json())
        return
    if streamed:
        typer.echo("\n" + "-" * 60)
    if answer.banner:
        typer.echo(f"NOTE: {answer.banner}\n")
    if answer.hint:
        typer.echo(f"hint: {answer.hint}", err=True)
    typer.echo(answer.answer)
    shown = [f for f in answer.findings if f["severity"] != "info"]
    if shown:
        typer.echo("\nfindings:")
        for f in shown:
            codes = "+".join(f["codes"]) or "text"
            typer.echo(f"  [{f['severity'].upper()}] {f['rule']} ({codes}): {f['message']}")
    if answer.citations:
        typer.echo("\nsources:")
        for c in answer.citations:
            typer.echo(f"  [{c.id}] {c.title} - {c.section} ({c.source})")
    t = answer.timings_ms
    typer.echo(f"\nruleset {answer.ruleset}; backend {answer.backend}; "
               f"{t.get('total', 0) / 1000:.1f} s")


@app.command()
def index(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Your own documents or folders (.md .txt .html .pdf) to add."),
    ] = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Build a fresh collection and swap it in at the end.")
    ] = False,
    if_needed: Annotated[
        bool, typer.Option("--if-needed", help="Do nothing when the index is already current.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Index the built-in guideline corpus, the code catalog and your documents in Chroma.

    Re-indexing is incremental: unchanged files are skipped, changed files re-embedded,
    deleted files removed. A crash during --rebuild leaves the old index in use; a crash
    during any run leaves nothing half-indexed that the next run does not redo. --rebuild
    also sets a damaged index aside (kept, renamed) and builds a new one.

    Exit status: 0 done, 1 a file failed or the index cannot be written, 2 a file named
    on the command line is not a supported type (.md .txt .html .pdf) or is over the size
    limit (ADVISOR_MAX_UPLOAD_MB); then nothing is indexed.
    """
    from advisor.index import (
        IndexProgress,
        IndexUnavailable,
        build_index,
        index_ready,
        store_error,
    )
    from advisor.limits import document_problem
    from advisor.settings import load_settings

    settings = load_settings()
    refused = [
        f"  {p}: {why}"
        for p in paths or ()
        if p.is_file() and (why := document_problem(p, settings.max_upload_mb))
    ]
    if refused:
        _fail("Not indexed (nothing was changed):\n" + "\n".join(refused), 2)
    try:
        if if_needed and not paths and not rebuild and index_ready(settings):
            if not as_json:
                typer.echo("index is current; nothing to do")
            else:
                _emit_json({"skipped": True})
            return
    except IndexUnavailable:
        pass
    from rich.progress import BarColumn, Progress, TextColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                  "{task.total}"), disable=as_json, transient=True) as bar:
        task = bar.add_task("indexing", total=None)

        def progress(p: IndexProgress) -> None:
            bar.update(task, total=p.total, completed=p.done,
                       description=f"{p.stage}: {Path(p.path).name if p.path else ''}")

        try:
            report = build_index(settings, paths or (), rebuild=rebuild, progress=progress)
        except IndexUnavailable as exc:
            _fail(str(exc), 1)
        except Exception as exc:
            if settings.chroma_url or not type(exc).__module__.startswith("chromadb"):
                raise
            _fail(str(store_error(settings, exc)), 1)
    if as_json:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
    else:
        for f in report.files:
            if f.status == "failed":
                typer.echo(f"  failed: {f.path}: {f.message}", err=True)
            for w in f.warnings:
                typer.echo(f"  warning: {f.path}: {w}", err=True)
        typer.echo(report.summary())
    if report.files_failed:
        raise typer.Exit(1)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for, e.g. 'PICC ultrasound'.")],
    k: Annotated[int, typer.Option("--k", min=1, max=50, help="Passages to return.")] = 5,
    as_json: JsonOpt = False,
) -> None:
    """Show what retrieval hands the model: passages with citations and candidate codes."""
    from advisor.index import IndexUnavailable, store_error
    from advisor.retriever import Retriever
    from advisor.settings import load_settings

    settings = load_settings()
    try:
        result = Retriever(settings, _catalog()).search(query, k)
    except IndexUnavailable as exc:
        _fail(str(exc), 1)
    except Exception as exc:
        if settings.chroma_url or not type(exc).__module__.startswith("chromadb"):
            raise
        _fail(str(store_error(settings, exc)), 1)
    if as_json:
        _emit_json({
            "passages": [p.citation() | {"text": p.text, "kind": p.kind, "codes": list(p.codes)}
                         for p in result.passages],
            "candidates": [c.model_dump(mode="json") for c in result.candidates],
        })
        return
    for p in result.passages:
        c = p.citation()
        typer.echo(f"[{c['id']}] {c['title']} / {c['section'] or '-'}  (score {c['score']:.3f})")
        typer.echo("    " + p.text[:240].replace("\n", " ") + ("..." if len(p.text) > 240 else ""))
    typer.echo("candidate codes:")
    for cand in result.candidates:
        typer.echo(f"  {cand.code}  {cand.label}  <- {cand.why}")


@app.command("import-cms")
def import_cms(
    files: Annotated[
        list[Path],
        typer.Argument(help="CMS NCCI PTP, MUE or add-on code files (.xlsx, .csv, .txt)."),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Import the quarterly CMS edit files; they take precedence over built-in edits.

    Give all parts of one release in one call (PTP releases come in several files): a later
    import of the same kind replaces the earlier one. A malformed file is refused whole and
    nothing already imported is lost.
    """
    from advisor.settings import load_settings
    from knowledge.catalog import clear_cache
    from knowledge.cms import CmsImportError, CmsStoreError, import_files

    settings = load_settings()
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        _fail(f"Not a file: {', '.join(missing)}", 2)

    def progress(path: Path, rows: int) -> None:
        if not as_json:
            typer.echo(f"  {path.name}: {rows:,} rows read", err=True)

    try:
        results = import_files(files, settings.cms_dir, progress=progress)
    except CmsImportError as exc:
        _fail(f"Import refused: {exc}\nNothing was changed; earlier imports are still active.", 2)
    except CmsStoreError as exc:
        _fail(f"Import failed: {exc}", 1)
    clear_cache()
    cat = _catalog()
    if as_json:
        _emit_json({"imported": [r.model_dump(mode="json") for r in results],
                    "ruleset": cat.ruleset})
        return
    for r in results:
        typer.echo(f"{r.file.name}: {r.kind} {r.quarter}: {r.rows_kept:,} rows stored, "
                   f"{r.rows_active:,} in effect")
    typer.echo(f"active ruleset: {cat.ruleset}")


@kb_app.command("validate")
def kb_validate() -> None:
    """Load every data file and check every cross-reference; errors name file and line."""
    from knowledge.catalog import build_catalog
    from knowledge.loader import KnowledgeError

    try:
        cat = build_catalog()
    except KnowledgeError as exc:
        _fail(str(exc), 1)
    from knowledge.corpus import load_guidelines

    try:
        docs = load_guidelines(catalog=cat)
    except KnowledgeError as exc:
        _fail(str(exc), 1)
    typer.echo(
        f"knowledge base OK: {len(cat.codes)} codes, {len(cat.rules)} pair rules "
        f"({len(cat._pairs)} edits), {len(cat.element_sets)} element sets, "
        f"{len(cat.modifiers)} modifiers, {len(cat.sources)} sources, "
        f"{len(docs)} guideline documents; ruleset {cat.ruleset}"
    )


@kb_app.command("info")
def kb_info(as_json: JsonOpt = False) -> None:
    """The active ruleset version (built-in release and CMS quarter) and what it holds."""
    cat = _catalog()
    info = {
        "ruleset": cat.ruleset,
        "release": cat.release,
        "as_of": cat.as_of.isoformat(),
        "cms_quarter": cat.cms_quarter,
        "codes": len(cat.codes),
        "active_codes": sum(1 for c in cat.codes.values() if c.active),
        "pair_edits": len(cat._pairs),
        "families": len(cat.families),
    }
    if as_json:
        _emit_json(info)
    else:
        for k, v in info.items():
            typer.echo(f"{k:>14}: {v}")


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option("--host", help="Bind address (default 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65535, help="Port (default 7860).")
    ] = None,
) -> None:
    """Start the web app (same as `python app.py`); lookups work while the model loads."""
    import importlib

    # app.py is the top-level UI module; imported by name because `app` here is the Typer app.
    web = importlib.import_module("app")
    web.serve(host=host, port=port)


# The eval command and the audit log and database commands live in their own modules;
# importing them here keeps their place in `advisor --help`.
from advisor import cli_eval, cli_store  # noqa: E402, F401
from advisor.cli_help import reflow_all  # noqa: E402

reflow_all(app)  # every command is registered by now


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()

