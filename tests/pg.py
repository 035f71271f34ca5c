"""A real PostgreSQL server for tests and benchmarks: Debian's binaries, a temporary folder,
a free port on 127.0.0.1.

The binaries are Debian's ``postgresql`` package (``make test`` installs it when missing),
found under ``/usr/lib/postgresql/<version>/bin`` (the newest), or in ``ADVISOR_TEST_PG_BIN``.
PostgreSQL refuses to run as root, and CI runs as root: then the server runs as the
``postgres`` user the package creates (``nobody`` if there is none), in a folder under /tmp
made for it and owned by it. The server is a child process (no ``pg_ctl`` daemon), so
:meth:`Postgres.kill` is a real crash (SIGKILL of the postmaster) and :meth:`Postgres.start`
a real restart on the same data and port.

Import as ``import pg`` (tests/conftest.py puts tests/ on sys.path).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

READY_WITHIN_S = 60.0
SUPERUSER = "advisor"
# Tests need no safety against a power cut: a killed server still recovers from its WAL
# (commits reach the OS before they return). The benchmark keeps the defaults.
FAST_SETTINGS = ("fsync=off", "full_page_writes=off")


class PostgresMissing(RuntimeError):
    """No PostgreSQL binaries on this machine; the message says how to install them."""


class PostgresFailed(RuntimeError):
    """The server did not start or stop (the message has the end of its log)."""


def find_bin_dir() -> Path:
    """The folder holding initdb and postgres: ADVISOR_TEST_PG_BIN, else Debian's newest."""
    named = os.environ.get("ADVISOR_TEST_PG_BIN")
    if named:
        if not (Path(named) / "initdb").exists():
            raise PostgresMissing(f"ADVISOR_TEST_PG_BIN={named} holds no initdb")
        return Path(named)

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", path.parent.parent.name))

    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=version)
    if not found:
        raise PostgresMissing(
            "PostgreSQL is not installed: `apt-get install -y postgresql` (make test runs it "
            "when /usr/lib/postgresql/*/bin/initdb is missing), or set ADVISOR_TEST_PG_BIN"
        )
    return found[-1].parent


def _run_as() -> tuple[int, int] | None:
    """(uid, gid) to run the server as when we are root; None when we are not."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    raise PostgresMissing("running as root and there is no 'postgres' or 'nobody' user")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Postgres:
    """One server: its folder, port and log; start, stop, kill, new databases."""

    def __init__(self, root: Path, bin_dir: Path, run_as: tuple[int, int] | None,
                 settings: Sequence[str]) -> None:
        """Nothing runs until :meth:`init` and :meth:`start`."""
        self.root = root
        self.bin_dir = bin_dir
        self.run_as = run_as
        self.settings = tuple(settings)
        self.data = root / "data"
        self.log_path = root / "server.log"
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._databases = 0

    # -- process ------------------------------------------------------------------------
    def _popen(self, args: Sequence[str], **kw: object) -> subprocess.Popen[bytes]:
        extra: dict[str, object] = {}
        if self.run_as is not None:
            extra = {"user": self.run_as[0], "group": self.run_as[1], "extra_groups": []}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
        return subprocess.Popen(list(args), cwd=self.root, env=env, **extra, **kw)  # type: ignore[call-overload, no-any-return]

    def init(self) -> None:
        """initdb: a cluster with a trusted superuser on loopback only."""
        with self.log_path.open("ab") as log:
            proc = self._popen(
                [str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
                 "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"],
                stdout=log, stderr=subprocess.STDOUT,
            )
            if proc.wait(timeout=120) != 0:
                raise PostgresFailed(f"initdb failed:\n{self.log_tail()}")

    def start(self) -> None:
        """Start the server (again) and wait until it takes connections."""
        if self.running:
            return
        args = [str(self.bin_dir / "postgres"), "-D", str(self.data), "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
                "-c", "max_connections=200"]
        for setting in self.settings:
            args += ["-c", setting]
        deadline = time.monotonic() + READY_WITHIN_S
        while True:
            with self.log_path.open("ab") as log:
                self.proc = self._popen(args, stdout=log, stderr=subprocess.STDOUT)
            if self._wait_ready(deadline):
                return
            # A killed server's backends may still hold its shared memory for a moment.
            if time.monotonic() > deadline:
                raise PostgresFailed(f"PostgreSQL did not start:\n{self.log_tail()}")
            time.sleep(0.5)

    def _wait_ready(self, deadline: float) -> bool:
        import psycopg

        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                time.sleep(0.2)
        return False

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 30) -> None:
        """A fast shutdown (SIGINT): sessions ended, everything written."""
        if not self.running:
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=timeout_s)

    def kill(self) -> None:
        """Crash the server: SIGKILL to the postmaster (its backends then exit)."""
        if not self.running:
            return
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server log."""
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    # -- databases ----------------------------------------------------------------------
    def dsn(self, database: str = "postgres") -> str:
        """A libpq connection string."""
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={database}"

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (what ADVISOR_DATABASE_URL takes)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; its URL."""
        import psycopg

        self._databases += 1
        name = f"{prefix}_{os.getpid()}_{self._databases}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # name built here, not from input
        return self.url(name)


@contextlib.contextmanager
def run_postgres(settings: Sequence[str] = FAST_SETTINGS) -> Iterator[Postgres]:
    """A fresh server for the ``with`` block; stopped and its folder removed afterwards."""
    bin_dir = find_bin_dir()
    run_as = _run_as()
    root = Path(tempfile.mkdtemp(prefix="advisor-pg-"))
    try:
        if run_as is not None:
            os.chown(root, *run_as)
        server = Postgres(root, bin_dir, run_as, settings)
        server.init()
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
