"""The `advisor eval` command: question suites run through the real pipeline and scored.

Registered on the `advisor` app by :mod:`advisor.cli`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from advisor.cli import JsonOpt, _fail, app

SuitesArg = Annotated[
    list[str], typer.Argument(help="Suite files or folders of *.yaml suites, e.g. suites.")
]
BackendOpt = Annotated[
    str | None, typer.Option("--backend", help="Chat backend: embedded, openai, ollama or none.")
]
OutOpt = Annotated[
    Path | None, typer.Option("--out", help="Write report.md, results.json and chart.png into DIR.")
]
BaselineOpt = Annotated[
    str | None,
    typer.Option("--baseline", help="Also score the raw model (no retrieval, no rules): raw."),
]
CompareOpt = Annotated[
    Path | None, typer.Option("--compare", help="An earlier results.json; print what got worse.")
]
LimitOpt = Annotated[
    int | None, typer.Option("--limit", help="Run only the first N matching cases.")
]
SampleOpt = Annotated[
    int | None,
    typer.Option("--sample", help="Run N of the matching cases, spread evenly over them "
                 "(every suite and variant kind keeps its share; the same N each time): an "
                 "estimate when the whole set would take too long."),
]
TagOpt = Annotated[
    list[str] | None,
    typer.Option("--tag", help="Keep cases with this tag value (family, user, kind, set or "
                 "variant), or key=value (set=holdout, variant=note), or id=ID[,ID...] for "
                 "named cases (a case's id also names its variants); repeat to narrow "
                 "further."),
]
PartialOpt = Annotated[
    bool,
    typer.Option("--partial", help="Run nothing: report the cases finished so far by an "
                 "interrupted or still running run with the same suites and options into "
                 "--out DIR (it can be resumed afterwards)."),
]
VariantsOpt = Annotated[
    str,
    typer.Option("--variants", help="Reworded variants of the questions: all (the questions "
                 "as written, then their variants; scored apart), none (as written only) or "
                 "only (variants only). --tag variant=KIND keeps one kind (clinician, coder, "
                 "distractor, note, abbreviation; 'original' for the questions as written)."),
]
ReplayOpt = Annotated[
    Path | None,
    typer.Option("--replay", help="A JSON-lines file of model replies kept by prompt: a "
                 "prompt drafted before is answered from it (the model drafts at temperature "
                 "0, so the reply is the same), a new one is drafted and added. For re-scoring "
                 "after a checker change; latencies of replayed answers are not model "
                 "latencies."),
]


@app.command("eval")
def eval_(
    suites: SuitesArg,
    backend: BackendOpt = None,
    as_json: JsonOpt = False,
    out: OutOpt = None,
    baseline: BaselineOpt = None,
    compare_to: CompareOpt = None,
    limit: LimitOpt = None,
    sample: SampleOpt = None,
    tag: TagOpt = None,
    partial: PartialOpt = False,
    variants: VariantsOpt = "all",
    replay: ReplayOpt = None,
) -> None:
    """Run question suites through the real pipeline and score them (optionally vs the raw model).

    Exit status: 0 done, 1 regressions against --compare, 2 bad suite file or option.
    """
    from pydantic import ValidationError

    from advisor.evaluation.command import EvalUsageError, SuiteError, run_eval

    if baseline not in (None, "raw"):
        _fail(f"Unknown baseline {baseline!r}: the only baseline is 'raw'.", 2)
    if variants not in ("all", "none", "only"):
        _fail(f"Unknown --variants {variants!r}: use all, none or only.", 2)
    try:
        _, status = run_eval(
            suites,
            backend=backend,
            as_json=as_json,
            out=out,
            baseline="raw" if baseline else None,
            compare_to=compare_to,
            limit=limit,
            tags=tag or [],
            partial=partial,
            variants=variants,  # type: ignore[arg-type]
            replay=replay,
            sample=sample,
        )
    except SuiteError as exc:
        _fail(str(exc), 2)
    except EvalUsageError as exc:
        _fail(str(exc), 2)
    except ValidationError as exc:
        _fail(f"Bad setting: {exc.errors()[0].get('msg')}. Backends: embedded, openai, "
              "ollama, none.", 2)
    raise typer.Exit(status)
