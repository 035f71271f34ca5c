"""A Chroma server that cannot be reached: the local index when there is one, with a notice;
a clear error naming both ways out when there is none.

Real embedded Chroma with the deterministic hashing embeddings of test_index.py; the server is
a closed port on 127.0.0.1 (the real server going down is tests/e2e/test_department.py).
"""

from __future__ import annotations

import socket

import pytest
from unit.test_index import build, env  # noqa: F401  (env is a fixture)

from advisor.index import IndexUnavailable
from advisor.retriever import Retriever


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_server_falls_back_to_the_local_index(env: dict) -> None:  # noqa: F811
    build(env)
    url = f"http://127.0.0.1:{closed_port()}"
    settings = env["settings"].model_copy(update={"chroma_url": url})
    r = Retriever(settings, env["catalog"], embedder=env["emb"])
    r.warm_up()  # loads the local index instead of failing
    result = r.search("what does 76942 cover")
    assert result.passages
    assert "76942" in {c.code for c in result.candidates}
    assert result.notice is not None
    assert url in result.notice and "local copy" in result.notice
    again = r.search("needle guidance units")  # within the retry pause: local, same notice
    assert again.notice == result.notice


def test_reachable_store_has_no_notice(env: dict) -> None:  # noqa: F811
    build(env)
    result = Retriever(env["settings"], env["catalog"], embedder=env["emb"]).search("76942")
    assert result.passages
    assert result.notice is None


def test_unreachable_server_without_a_local_index_says_what_to_do(env: dict) -> None:  # noqa: F811
    url = f"http://127.0.0.1:{closed_port()}"
    settings = env["settings"].model_copy(update={"chroma_url": url})
    r = Retriever(settings, env["catalog"], embedder=env["emb"])
    with pytest.raises(IndexUnavailable, match=r"cannot reach the Chroma server .*chroma run"
                       r".*advisor index"):
        r.search("what does 76942 cover")


def test_the_answer_shows_the_notice_as_its_banner(env: dict) -> None:  # noqa: F811
    from advisor.pipeline import Advisor

    build(env)
    url = f"http://127.0.0.1:{closed_port()}"
    settings = env["settings"].model_copy(update={"chroma_url": url, "backend": "none"})
    r = Retriever(settings, env["catalog"], embedder=env["emb"])
    answer = Advisor(settings, env["catalog"], retriever=r).ask(
        "What do I bill for ultrasound guidance for needle placement?")
    assert answer.banner is not None
    assert "cannot be reached" in answer.banner and url in answer.banner
    assert answer.citations  # the local index's passages were used
