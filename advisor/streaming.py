"""Readable text from a draft's JSON as the model streams it."""

from __future__ import annotations

import re


class DraftRenderer:
    """Turns the streamed JSON of a draft into readable text as it arrives.

    Shows each drafted code once its value is complete (marked as not yet checked) and the
    answer prose character by character; the JSON syntax itself is never shown.
    """

    _CODE_RE = re.compile(r'"code"\s*:\s*"([^"]*)"')
    _ANSWER_RE = re.compile(r'"answer"\s*:\s*"')

    def __init__(self) -> None:
        self.buf = ""
        self.codes_shown = 0
        self.answer_shown = 0

    def feed(self, text: str) -> str:
        self.buf += text
        out: list[str] = []
        codes = self._CODE_RE.findall(self.buf)
        for code in codes[self.codes_shown :]:
            out.append(f"drafting {code.strip() or '?'} (not yet checked)\n")
        self.codes_shown = len(codes)
        m = self._ANSWER_RE.search(self.buf)
        if m:
            prose = partial_json_string(self.buf[m.end() :])
            if len(prose) > self.answer_shown:
                if self.answer_shown == 0:
                    out.append("\n")
                out.append(prose[self.answer_shown :])
                self.answer_shown = len(prose)
        return "".join(out)


_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "/": "/", "r": "", "b": "", "f": ""}


def partial_json_string(s: str) -> str:
    """The decoded prefix of a JSON string body (stops at its closing quote)."""
    out: list[str] = []
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == '"':
            break
        if ch == "\\":
            if i + 1 >= len(s):
                break  # the escape is not complete yet
            nxt = s[i + 1]
            if nxt == "u":
                if i + 6 > len(s):
                    break
                try:
                    out.append(chr(int(s[i + 2 : i + 6], 16)))
                except ValueError:
                    pass
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)

