"""What `advisor eval` does, kept out of cli.py so the command itself stays a thin wrapper."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from advisor.evaluation.report import (
    compare,
    format_regressions,
    load_results,
    markdown_report,
    write_outputs,
)
from advisor.evaluation.runner import BaselineKind, EvalRun, Runner, build_advisor
from advisor.evaluation.suite import QuestionCase, SuiteError, load_suites, select_cases


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
) -> tuple[EvalRun, int]:
    """Load suites, run them, write the outputs; (run, exit status) where 1 = regressions.

    ``settings`` and ``advisor`` are for tests and embedding; by default both are built from
    the environment. Raises SuiteError for broken suite files and EvalUsageError for bad
    options.
    """
    from advisor.settings import load_settings

    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    if limit is not None and limit < 1:
        raise EvalUsageError("--limit must be at least 1")
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
    cases = select_cases(loaded, tags, limit)
    if not cases:
        raise EvalUsageError(f"no case matches the tags {list(tags)}")
    if advisor is None:
        if any(isinstance(c, QuestionCase) for c in cases):
            _ensure_index(settings, catalog, stderr)
        advisor = build_advisor(settings, catalog)
    runner = Runner(advisor, baseline=baseline)
    filters: dict[str, Any] = {}
    if tags:
        filters["tags"] = list(tags)
    if limit is not None:
        filters["limit"] = limit

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
                loaded, cases,
                progress=lambda cid: bar.update(task, advance=1, description=cid),
                filters=filters,
            )
    else:
        run = runner.run(loaded, cases, filters=filters)

    command = "advisor eval " + " ".join(
        [*suites]
        + ([f"--backend {backend}"] if backend else [])
        + ([f"--baseline {baseline}"] if baseline else [])
        + [f"--tag {t}" for t in tags]
        + ([f"--limit {limit}"] if limit else [])
    )
    if out is not None:
        paths = write_outputs(run, out, command)
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
