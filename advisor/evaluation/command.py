"""What `advisor eval` does, kept out of cli.py so the command itself stays a thin wrapper."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from advisor.evaluation.report import (
    compare,
    format_regressions,
    load_results,
    markdown_report,
    write_outputs,
)
from advisor.evaluation.runner import (
    BaselineKind,
    CaseResult,
    EvalRun,
    Runner,
    build_advisor,
    case_key,
    summarize,
)
from advisor.evaluation.suite import (
    VARIANT_MODES,
    QuestionCase,
    SuiteError,
    VariantMode,
    load_suites,
    origin,
    select_cases,
)


class EvalUsageError(Exception):
    """The command was given something it cannot use (exit status 2)."""

    retryable = False


def _ensure_index(settings: Any, catalog: Any, err: TextIO) -> None:
    """Build the guideline index when it is missing or stale, as `make run` does."""
    from advisor.index import build_index, index_ready

    if index_ready(settings, catalog):
        return
    err.write("No current guideline index: building it once (`advisor index`)...\n")
    report = build_index(settings, catalog=catalog)
    err.write(report.summary() + "\n")


CHECKPOINT = "cases.partial.jsonl"


class Checkpoint:
    """Finished cases appended one JSON line at a time, so a crash loses at most one case.

    The first line names the run (suites, backend, baseline, filters, ruleset); a later run
    with the same name into the same --out folder takes the finished cases from it and runs
    only the rest. The file is removed once the report is written.
    """

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.header = header
        self._fh: TextIO | None = None

    def load(self) -> dict[str, CaseResult]:
        """Finished cases of an interrupted run of the same name; {} when there is none."""
        if not self.path.exists():
            return {}
        done: dict[str, CaseResult] = {}
        with self.path.open(encoding="utf-8") as fh:
            lines = fh.read().splitlines()
        try:
            first = json.loads(lines[0]) if lines else None
        except ValueError:
            first = None
        if not isinstance(first, dict) or first.get("header") != self.header:
            return {}
        for line in lines[1:]:
            try:
                r = CaseResult.model_validate_json(line)
            except ValueError:
                continue  # a line cut short by the crash
            done[case_key(r.suite, r.id)] = r
        return done

    def start(self, done: dict[str, CaseResult]) -> None:
        """Rewrite the file with the header and the cases kept, then append as cases finish."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(json.dumps({"header": self.header}) + "\n")
            for r in done.values():
                fh.write(r.model_dump_json() + "\n")
        tmp.replace(self.path)
        self._fh = self.path.open("a", encoding="utf-8")

    def append(self, result: CaseResult) -> None:
        """Record one finished case on disk at once."""
        if self._fh is not None:
            self._fh.write(result.model_dump_json() + "\n")
            self._fh.flush()

    def finish(self) -> None:
        """Close and remove the file (the full results are written by then)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        """Close but keep the file (an interrupted run resumes from it)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None


# Long: the command's steps in the order they run (suites, settings, index, resumed
# results, the run, reports, comparison), each a few lines.
def run_eval(
    suites: Sequence[str],
    *,
    backend: str | None = None,
    as_json: bool = False,
    out: Path | None = None,
    baseline: BaselineKind | None = None,
    compare_to: Path | None = None,
    limit: int | None = None,
    tags: Sequence[str] = (),
    show_progress: bool = True,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    settings: Any = None,
    advisor: Any = None,
    partial: bool = False,
    variants: VariantMode = "all",
    replay: Path | None = None,
    sample: int | None = None,
) -> tuple[EvalRun, int]:
    """Load suites, run them, write the outputs; (run, exit status) where 1 = regressions.

    ``variants``: 'all' (the cases as written, then their variants), 'none' or 'only'.
    ``replay``: a JSON-lines file of model replies by prompt (advisor.replies): a prompt
    drafted before is answered from it, a new reply is added to it.

    ``settings`` and ``advisor`` are for tests and embedding; by default both are built from
    the environment. Raises SuiteError for broken suite files and EvalUsageError for bad
    options.
    """
    from advisor.settings import load_settings

    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    if limit is not None and limit < 1:
        raise EvalUsageError("--limit must be at least 1")
    if sample is not None and sample < 1:
        raise EvalUsageError("--sample must be at least 1")
    if variants not in VARIANT_MODES:
        raise EvalUsageError(
            f"--variants must be one of {', '.join(VARIANT_MODES)}, not {variants!r}"
        )
    if partial and out is None:
        raise EvalUsageError("--partial reads the finished cases of a run in --out DIR: give it")
    old = None
    if compare_to is not None:
        try:
            old = load_results(compare_to)
        except (OSError, ValueError) as exc:
            raise EvalUsageError(f"cannot compare with {compare_to}: {exc}") from exc
    if advisor is None:
        settings = settings or load_settings(backend=backend)
        from knowledge.catalog import load_catalog

        cms = settings.cms_dir if settings.cms_dir.exists() else None
        catalog = load_catalog(cms_dir=cms)
    else:
        catalog = advisor.catalog
    loaded = load_suites(suites, catalog)
    cases = select_cases(loaded, tags, limit, variants, sample)
    if not cases:
        what = f"the tags {list(tags)}" if tags else "the options"
        raise EvalUsageError(f"no case matches {what} (--variants {variants})")
    if advisor is None:
        if not partial and any(isinstance(c, QuestionCase) for c in cases):
            _ensure_index(settings, catalog, stderr)
        advisor = build_advisor(settings, catalog)
    if replay is not None:
        from advisor.replies import ReplyCache

        advisor.replies = ReplyCache(replay, advisor.backend_label())
    runner = Runner(advisor, baseline=baseline)
    filters: dict[str, Any] = {}
    if tags:
        filters["tags"] = list(tags)
    if limit is not None:
        filters["limit"] = limit
    if variants != "all":
        filters["variants"] = variants
    if sample is not None:
        filters["sample"] = sample

    command = "advisor eval " + " ".join(
        [*suites]
        + ([f"--backend {backend}"] if backend else [])
        + ([f"--baseline {baseline}"] if baseline else [])
        + [f"--tag {t}" for t in tags]
        + ([f"--limit {limit}"] if limit else [])
        + ([f"--sample {sample}"] if sample else [])
        + ([f"--variants {variants}"] if variants != "all" else [])
        + (["--partial"] if partial else [])
        + ([f"--replay {replay}"] if replay else [])
    )
    checkpoint: Checkpoint | None = None
    done: dict[str, CaseResult] = {}
    if out is not None:
        checkpoint = Checkpoint(
            out / CHECKPOINT,
            {
                "suites": [str(s.path) for s in loaded],
                "backend": advisor.backend_label(),
                "baseline": baseline,
                "filters": filters,
                "ruleset": catalog.ruleset,
            },
        )
        done = checkpoint.load()
        wanted = {case_key(_suite_name(loaded, c), c.id) for c in cases}
        done = {k: v for k, v in done.items() if k in wanted}
        if partial:
            return _partial_report(loaded, cases, done, filters, checkpoint, out, command,
                                   baseline, stdout, stderr), 0
        if done:
            stderr.write(
                f"resuming: {len(done)} of {len(cases)} cases already done in "
                f"{checkpoint.path} (delete that file to start over)\n"
            )
        checkpoint.start(done)
    on_result = checkpoint.append if checkpoint is not None else None
    try:
        run = _run_with_progress(runner, loaded, cases, filters, done, on_result,
                                 show_progress, stderr)
    finally:
        if checkpoint is not None:
            checkpoint.close()
        if advisor.replies is not None:
            stderr.write(advisor.replies.summary() + "\n")

    if out is not None:
        paths = write_outputs(run, out, command)
        if checkpoint is not None:
            checkpoint.finish()
        stderr.write("wrote " + ", ".join(str(p) for p in paths.values()) + "\n")
    regressions = compare(old, run) if old is not None else []
    if as_json:
        payload = run.model_dump(mode="json")
        if old is not None:
            payload["regressions"] = [r.model_dump(mode="json") for r in regressions]
        stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        stdout.write(markdown_report(run, command))
        if old is not None:
            stdout.write("\n" + format_regressions(regressions) + "\n")
    return run, 1 if regressions else 0


__all__ = ["EvalUsageError", "SuiteError", "run_eval"]


def _partial_report(
    loaded: Sequence[Any],
    cases: Sequence[Any],
    done: dict[str, CaseResult],
    filters: dict[str, Any],
    checkpoint: Checkpoint,
    out: Path,
    command: str,
    baseline: BaselineKind | None,
    stdout: TextIO,
    stderr: TextIO,
) -> EvalRun:
    """The report of the cases an interrupted (or still running) run has finished.

    Nothing is run and the checkpoint is only read, so a run still appending to it is not
    disturbed and can be resumed later; the report says how many cases it covers.
    """
    if not done:
        raise EvalUsageError(
            f"no finished cases of this run in {checkpoint.path} (same suites, backend, "
            "baseline and filters are needed)"
        )
    order = [case_key(_suite_name(loaded, c), c.id) for c in cases]
    results = [done[k] for k in order if k in done]
    note = f"{len(results)} of {len(cases)} cases (partial: read from {checkpoint.path.name})"
    run = EvalRun(
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=0.0,
        backend=str(checkpoint.header["backend"]),
        ruleset=str(checkpoint.header["ruleset"]),
        baseline=baseline,
        suites=[str(s.path) for s in loaded],
        filters={**filters, "partial": note},
        summary=summarize(results),
        cases=results,
    )
    paths = write_outputs(run, out, command)
    stderr.write(f"partial report of {note}; wrote " + ", ".join(map(str, paths.values()))
                 + "\n")
    stdout.write(markdown_report(run, command))
    return run


def _suite_name(loaded: Sequence[Any], case: Any) -> str:
    written = origin(case)
    for s in loaded:
        if any(c is written for c in s.cases):
            return str(s.name)
    return ""


def _run_with_progress(
    runner: Runner,
    loaded: Sequence[Any],
    cases: Sequence[Any],
    filters: dict[str, Any],
    done: dict[str, CaseResult],
    on_result: Any,
    show_progress: bool,
    stderr: TextIO,
) -> EvalRun:
    if show_progress:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        with Progress(
            TextColumn("[bold]eval"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.description}"),
            console=Console(file=stderr),
            transient=False,
        ) as bar:
            task = bar.add_task("", total=len(cases))
            run = runner.run(
                loaded, cases, done=done, on_result=on_result,
                progress=lambda cid: bar.update(task, advance=1, description=cid),
                filters=filters,
            )
    else:
        run = runner.run(loaded, cases, filters=filters, done=done, on_result=on_result)
    return run
