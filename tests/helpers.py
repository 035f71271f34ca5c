"""Shared by the tests and benchmarks that run real processes on loopback.

- :func:`free_port`, :func:`wait_http`, :func:`stop_process`;
- :func:`run_app`: ``python app.py --port <free port>`` as a subprocess with a clean
  environment (no inherited ``ADVISOR_*``, analytics and hub look-ups off), until the
  ``with`` block ends;
- :func:`private_data_dir`: a data dir of its own for one test (the shared index copied,
  the joined model files linked), so its audit log and feedback stay its own;
- :func:`rss_mb`, :func:`cpu_seconds`, :func:`wait_cpu`: a process's resident memory, CPU
  time and busy/idle state, from /proc.

Import as ``import helpers`` (tests/conftest.py puts tests/ on sys.path); the benchmarks
put tests/ on sys.path themselves.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APP_START_TIMEOUT_S = 240.0
QUIET_ENV = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "ANONYMIZED_TELEMETRY": "False",
}


class ProcessFailed(RuntimeError):
    """A process exited early or did not answer in time (the message has its log tail)."""


def shared_data_dir() -> Path:
    """Where the joined GGUF files and the shared index are cached between runs."""
    return Path(os.environ.get("ADVISOR_TEST_DATA_DIR", REPO / ".venv" / "test-data"))


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, chars: int = 4000) -> str:
    """The end of a log file ('' if it does not exist)."""
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def wait_http(
    url: str,
    proc: subprocess.Popen[bytes],
    log_path: Path,
    timeout_s: float,
    *,
    what: str = "process",
) -> None:
    """Wait until ``url`` answers 200; ProcessFailed if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise ProcessFailed(f"{what} exited with {proc.returncode}:\n{tail(log_path)}")
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise ProcessFailed(f"{what} not up in {timeout_s:g} s:\n{tail(log_path)}")
        time.sleep(0.5)


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout_s``."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)


def app_env(data_dir: Path, **settings: object) -> dict[str, str]:
    """The environment for the app: ours without ADVISOR_*, then the given settings.

    ``settings`` are Settings field names (``backend="none"``, ``llm_timeout_s=5``).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADVISOR_")}
    env.update(QUIET_ENV)
    env["ADVISOR_DATA_DIR"] = str(data_dir)
    env.update({f"ADVISOR_{k.upper()}": str(v) for k, v in settings.items()})
    return env


@dataclass(frozen=True)
class AppProcess:
    """A running app: its URL, process and log file."""

    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    data_dir: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def run_app(
    data_dir: Path,
    log_path: Path,
    *,
    start_timeout_s: float = APP_START_TIMEOUT_S,
    keep_log_as: Path | None = None,
    **settings: object,
) -> Iterator[AppProcess]:
    """``python app.py`` on a free port of 127.0.0.1 until the ``with`` block ends.

    Ready when its page answers (the model and index may still be loading: the app's
    handlers wait for them). ``keep_log_as`` receives a copy of the log at the end.
    """
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(REPO / "app.py"), "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO, env=app_env(data_dir, **settings), stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_http(url, proc, log_path, start_timeout_s, what="app")
        yield AppProcess(url=url, proc=proc, log_path=log_path, data_dir=data_dir)
    finally:
        stop_process(proc)
        if keep_log_as is not None:
            keep_log_as.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(log_path, keep_log_as)


def joined_model(preset: str = "small") -> Path:
    """The packaged GGUF of ``preset`` in the shared data dir (joined there on first use)."""
    from advisor.gguf import ensure_gguf
    from advisor.settings import ModelPreset, Settings

    return ensure_gguf(Settings(data_dir=shared_data_dir(), model_preset=ModelPreset(preset)))


def private_data_dir(dest: Path, presets: Sequence[str] = ("small",)) -> Path:
    """A data dir for one test: the shared index copied (if built), the models linked.

    Without a shared index the app builds its own on start. The model files are symlinks
    (with their verification stamps), so nothing is joined or hashed again.
    """
    dest.mkdir(parents=True, exist_ok=True)
    shared = shared_data_dir()
    if (shared / "chroma" / "chroma.sqlite3").exists() and not (dest / "chroma").exists():
        shutil.copytree(shared / "chroma", dest / "chroma")
    models = dest / "models"
    models.mkdir(exist_ok=True)
    for preset in presets:
        gguf = joined_model(preset)
        for src in gguf.parent.glob(gguf.name + "*"):
            link = models / src.name
            if not link.exists():
                link.symlink_to(src.resolve())
    return dest


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (VmRSS from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ProcessFailed(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_cpu(pid: int, *, busy: bool, timeout_s: float, window_s: float = 0.5) -> None:
    """Wait until a process is busy (over 20% of a core in ``window_s``) or idle (under 5%).

    20%, not more: on a shared 2-core machine a busy process may get little of a core.
    """
    deadline = time.monotonic() + timeout_s
    before = cpu_seconds(pid)
    while True:
        time.sleep(window_s)
        now = cpu_seconds(pid)
        share = (now - before) / window_s
        if (share > 0.2) if busy else (share < 0.05):
            return
        before = now
        if time.monotonic() > deadline:
            state = "busy" if busy else "idle"
            raise TimeoutError(f"pid {pid} not {state} within {timeout_s:g} s ({share:.0%})")

