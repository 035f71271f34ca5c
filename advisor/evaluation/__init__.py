"""Question suites, the runner that puts them through the pipeline, metrics and reports."""

from advisor.evaluation.metrics import AnswerView, aggregate_questions, score_question
from advisor.evaluation.report import compare, markdown_report, write_outputs
from advisor.evaluation.runner import EvalRun, Runner, build_advisor
from advisor.evaluation.suite import SuiteError, load_suites, select_cases

__all__ = [
    "AnswerView",
    "EvalRun",
    "Runner",
    "SuiteError",
    "aggregate_questions",
    "build_advisor",
    "compare",
    "load_suites",
    "markdown_report",
    "score_question",
    "select_cases",
    "write_outputs",
]
