"""The chat's input limits in the running app, through gradio_client.

The real app (backend none: code-only questions need no model) with a limit of 2 questions
a minute and 200 characters. Each gradio_client Client is its own Gradio session, so the
limit must hold per session: the third question of one session is refused with a message,
while another session is still answered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helpers
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


def shown(chat: list[dict[str, Any]]) -> str:
    content = chat[-1]["content"]
    return content if isinstance(content, str) else str(content)


def test_chat_rate_and_length_limits_per_session(tmp_path: Path) -> None:
    from gradio_client import Client

    data = helpers.private_data_dir(tmp_path / "data", presets=())
    try:
        with helpers.run_app(data, tmp_path / "app.log", backend="none",
                             max_questions_per_minute=2, max_question_chars=200) as app:
            alice = Client(app.url, verbose=False, download_files=False)
            chat: list[dict[str, Any]] = []
            for question in ("20610 76942", "76937"):
                job = alice.submit(question, chat, api_name="/chat")
                chat, box = job.result()
                assert "error-box" not in shown(chat) and "data-code=" in shown(chat)
                # The box is emptied once, when the question is taken; the updates after
                # that leave it alone (a next question typed meanwhile is never wiped).
                boxes = [out[1] for out in job.outputs()]
                assert "" in boxes, boxes
                assert question not in boxes and box != question
            chat, box = alice.predict("93970", chat, api_name="/chat")
            assert "error-box" in shown(chat) and "limit is 2 a minute" in shown(chat)
            assert box == "93970", "the refused question stays in the box"

            bob = Client(app.url, verbose=False, download_files=False)
            chat_b, _ = bob.predict("93970", [], api_name="/chat")
            assert "error-box" not in shown(chat_b), "another session has its own allowance"
            chat_b, _ = bob.predict("76942 " * 40, chat_b, api_name="/chat")
            assert "error-box" in shown(chat_b) and "the limit is 200" in shown(chat_b)
            with pytest.raises(Exception, match="the limit is 200"):
                bob.predict("76942 " * 40, api_name="/ask")
    except helpers.ProcessFailed as exc:
        pytest.fail(str(exc))
