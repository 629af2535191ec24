"""llama.cpp on this machine's CPU: kept off its AMX weight buffers where they crash."""

from __future__ import annotations

import llama_cpp

from hintwise.models.llama.loading import avoid_amx_crash


def test_amx_buffers_are_off_exactly_where_llama_cpp_uses_amx():
    """With AMX (llama.cpp #20824: a segfault at the first evaluation) every model loads without
    extra buffer types; elsewhere llama.cpp keeps its defaults (its weight repacking helps)."""
    amx = b"AMX_INT8 = 1" in llama_cpp.llama_print_system_info()
    assert avoid_amx_crash() is amx
    assert avoid_amx_crash() is amx  # once per process: calling again changes nothing
    assert llama_cpp.llama_cpp.llama_model_default_params().use_extra_bufts is not amx
