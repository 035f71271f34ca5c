"""Root conftest: its folder (tests/) goes on sys.path, so test modules can ``import helpers``.

``helpers.py`` holds what several test modules and the benchmarks need: free ports, the app
as a subprocess, a private data dir, resident memory of a process. ``pg.py`` runs a real
PostgreSQL server; the ``postgres`` fixture below starts one per session, on first use.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pg import Postgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One real PostgreSQL server for the whole session (started on first use), see pg.py."""
    import pg

    try:
        server_cm = pg.run_postgres()
        server = server_cm.__enter__()
    except (pg.PostgresMissing, pg.PostgresFailed) as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server_cm.__exit__(None, None, None)


@pytest.fixture
def pg_url(postgres: Postgres) -> str:
    """A new empty database on the session's server, for one test; its URL."""
    if not postgres.running:  # a fault test may have left it stopped
        postgres.start()
    return postgres.create_database()
