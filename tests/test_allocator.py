"""`hintwise serve` keeps glibc from serving megabyte-sized temporaries from its heap (see
lsp_server/allocator.py), measured in a fresh interpreter with glibc's own counters."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import subprocess
import sys

import pytest

PROBE = """
import ctypes, ctypes.util, json, sys
from hintwise.lsp_server.allocator import keep_large_blocks_out_of_the_heap

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "fixed":
    keep_large_blocks_out_of_the_heap()
block = bytearray(1 << 20)  # mmapped: above the initial threshold
del block  # without the fix this free raises the threshold to 1 MiB
block = bytearray(1 << 20)
print(json.dumps({"mmapped": libc.mallinfo2().hblkhd >= 1 << 20}))
"""


def _probe(mode: str) -> bool:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)["mmapped"]


@pytest.mark.skipif(
    not sys.platform.startswith("linux")
    or not hasattr(ctypes.CDLL(ctypes.util.find_library("c") or None), "mallinfo2"),
    reason="glibc >= 2.33 only",
)
def test_a_freed_megabyte_block_does_not_move_the_next_one_into_the_heap() -> None:
    assert not _probe("default")  # glibc's dynamic threshold: the second block is in the heap
    assert _probe("fixed")  # with the fix it is mapped, and given back when freed
