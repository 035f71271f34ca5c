"""llama.cpp loads without its AMX extra buffers where the CPU lists AMX (they fault on some
virtual machines), unless ADVISOR_LLAMA_EXTRA_BUFFERS says otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from advisor import llama_params


def _cpuinfo(tmp_path: Path, flags: str) -> Path:
    p = tmp_path / "cpuinfo"
    p.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 avx2 {flags}\n")
    return p


def test_amx_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    assert llama_params.cpu_lists_amx(_cpuinfo(tmp_path, "avx512f amx_bf16 amx_tile amx_int8"))
    assert not llama_params.cpu_lists_amx(_cpuinfo(tmp_path, "avx512f"))
    assert not llama_params.cpu_lists_amx(tmp_path / "missing")


@pytest.mark.parametrize(("env", "amx", "wanted"), [
    ("auto", True, False), ("auto", False, True), ("on", True, True), ("off", False, False),
])
def test_the_choice(monkeypatch: pytest.MonkeyPatch, env: str, amx: bool, wanted: bool) -> None:
    monkeypatch.setenv(llama_params.ENV, env)
    monkeypatch.setattr(llama_params, "cpu_lists_amx", lambda: amx)
    assert llama_params.extra_buffers_wanted() is wanted


def test_loading_turns_the_extra_buffers_off_and_restores_the_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import llama_cpp.llama_cpp as lib

    monkeypatch.setenv(llama_params.ENV, "off")
    real = lib.llama_model_default_params
    with llama_params.model_params():
        assert lib.llama_model_default_params().use_extra_bufts is False
    assert lib.llama_model_default_params is real
    assert real().use_extra_bufts is True
