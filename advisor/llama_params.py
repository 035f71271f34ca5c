"""llama.cpp model parameters this machine needs, for the embedded model and the local server.

llama-cpp-python builds llama.cpp from source for the CPU it is installed on. Where the CPU
lists AMX, that build puts the weights in AMX "extra buffers" and multiplies them with tile
instructions. Some virtual machines list AMX, grant the permission to use it, and still fault
on the first tile load (a general protection fault in ``ggml_backend_amx_mul_mat``, the
process dies with SIGSEGV on its first prompt; seen on the 2-core VM this project is tested
on). So the extra buffer types are off where the CPU lists AMX; llama.cpp then uses its plain
AVX kernels. ``ADVISOR_LLAMA_EXTRA_BUFFERS`` = ``on`` or ``off`` overrides the choice.

    python -m advisor.llama_params [llama_cpp.server options]   # the server, same choice
"""

from __future__ import annotations

import contextlib
import os
import runpy
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ENV = "ADVISOR_LLAMA_EXTRA_BUFFERS"


def cpu_lists_amx(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when the CPU flags include AMX (Linux; elsewhere False)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    return any(
        line.startswith("flags") and " amx_tile" in f" {line.split(':', 1)[-1]}"
        for line in text.splitlines()
    )


def extra_buffers_wanted() -> bool:
    """Whether llama.cpp may use its extra (repacked, AMX) weight buffers here."""
    choice = os.environ.get(ENV, "auto").strip().lower()
    if choice in ("on", "1", "true", "yes"):
        return True
    if choice in ("off", "0", "false", "no"):
        return False
    return not cpu_lists_amx()


@contextlib.contextmanager
def model_params() -> Iterator[None]:
    """While open, llama.cpp models are loaded with this machine's parameters.

    llama-cpp-python's ``Llama`` takes no argument for the extra buffer types, so the
    default parameters it starts from are adjusted for the time of the load.
    """
    if extra_buffers_wanted():
        yield
        return
    import llama_cpp.llama_cpp as lib  # the module whose function Llama() calls

    real = lib.llama_model_default_params

    def params() -> Any:
        p = real()
        if hasattr(p, "use_extra_bufts"):
            p.use_extra_bufts = False
        return p

    lib.llama_model_default_params = params
    try:
        yield
    finally:
        lib.llama_model_default_params = real


def main() -> None:
    """``python -m llama_cpp.server`` with this machine's parameters."""
    sys.argv = ["llama_cpp.server", *sys.argv[1:]]
    with model_params():
        runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
