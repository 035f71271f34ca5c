"""Question understanding: the encounter frame and how codes fit it.

:func:`read_frame` reads a question (and the earlier turn it follows up) into a typed
:class:`Frame` of facts, each affirmed, negated, historical, hypothetical or about someone
else; :mod:`guardrails.question.fit` compares a frame with what a code describes.
"""

from guardrails.question.context import ReaderUnavailable
from guardrails.question.frame import Count, Fact, Frame, Status
from guardrails.question.reader import read_frame

__all__ = ["Count", "Fact", "Frame", "ReaderUnavailable", "Status", "read_frame"]
