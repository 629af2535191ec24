"""glibc's malloc, told to give large blocks back to the system as soon as they are freed.

glibc serves a block of 128 KiB or more with its own mmap, and returns it on free, until the
first such block is freed: from then on its threshold rises to the largest size freed (up to
32 MiB) and those blocks come from the heap instead. A long-lived server makes megabyte-sized
temporaries all day (numpy rows of logits, prompt token lists, tree-sitter trees); carved from
the heap between small long-lived objects they fragment it, and in a typing soak the resident
size rose in 1-2 MB steps that were never given back. A fixed threshold turns the adjustment
off. Elsewhere (macOS, musl, Windows) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
MMAP_THRESHOLD = 256 * 1024


def keep_large_blocks_out_of_the_heap(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at `threshold` bytes; False where there is no glibc."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):  # not glibc: no mallopt
        log.debug("no mallopt in %s", name)
        return False
