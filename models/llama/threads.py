"""How many threads llama.cpp evaluates a prompt with: every core when nothing else runs.

llama.cpp keeps two thread counts per context: `n_threads` for a batch of one token (generation)
and `n_threads_batch` for a batch of several (prompt evaluation), and `llama_set_n_threads`
changes both between two calls. Generation keeps `model.threads` (all cores but one): its
threads wait for each other at every token, so one busy process next to "all cores" makes it
about 2× slower (docs/performance.md, "Threads"). A long prompt is different: it is evaluated in
chunks of PROMPT_CHUNK tokens, each one short, and the first request deep in a file costs
seconds of it on one thread. So a long evaluation samples how busy the rest of the machine is
while it runs (CPU time of the whole machine from /proc/stat, minus this process' own) and
evaluates the next chunk with every free core, or falls back to the generation count as soon
as something else wants the CPU. The first chunk runs with the generation count: it is the
sampling window, and costs nothing to measure.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llama_cpp import Llama

# Another process using less than this share of a core (the shell, an idle editor, the
# server's own event loop) does not count as competing: llama.cpp's threads would hardly wait.
IDLE_SHARE = 0.25

# A guard for big machines, not a measured optimum (measured only on 2 cores): past this, a
# 64-token chunk of a small model gives each thread too little work to gain from more.
MAX_PROMPT_THREADS = 16

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class CpuSample:
    """Busy CPU seconds of the whole machine and of this process at one moment."""

    at: float  # time.monotonic()
    machine_busy_s: float
    own_s: float


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, e.g. a container's), else all; at
    most MAX_PROMPT_THREADS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return min(cores, MAX_PROMPT_THREADS)


def read_cpu_sample(stat: str = "/proc/stat") -> CpuSample | None:
    """The machine's busy CPU time so far (Linux /proc/stat), or None where there is none.

    Busy is every column but idle and iowait, steal included: time the hypervisor gave to
    another machine is a core we would wait for too. Reading the file costs ~30 µs.
    """
    try:
        with open(stat, encoding="ascii") as file:
            first = file.readline().split()
    except OSError:
        return None
    if not first or first[0] != "cpu" or len(first) < 5:
        return None
    ticks = [int(value) for value in first[1:9]]
    busy = sum(ticks) - ticks[3] - ticks[4]  # minus idle and iowait
    return CpuSample(time.monotonic(), busy / _CLOCK_TICKS, time.process_time())


def others_busy(before: CpuSample, after: CpuSample) -> float | None:
    """Cores the rest of the machine kept busy between two samples (0 = only us), or None when
    the window is too short to tell (under two clock ticks)."""
    window = after.at - before.at
    if window < 2 / _CLOCK_TICKS:
        return None
    machine = after.machine_busy_s - before.machine_busy_s
    own = after.own_s - before.own_s
    return max(0.0, (machine - own) / window)


def choose_batch_threads(cores: int, generation: int, others: float | None) -> int:
    """Threads for the next prompt chunk: the cores the rest of the machine leaves free, never
    fewer than the generation count; the generation count when the load is unknown.

    A competitor is counted as a whole core from IDLE_SHARE of one on (it was measured while our
    own threads ran, which keeps it below what it would take), so on 2 cores anything busier
    than a quarter of a core gives the generation count, 1.
    """
    if others is None:
        return generation
    taken = max(0, math.ceil(others - IDLE_SHARE))
    return max(generation, min(cores, cores - taken))


@dataclass
class BatchThreads:
    """Chooses, chunk by chunk, the thread count llama.cpp evaluates a prompt with, and tells it.

    `fixed` > 0 pins the count (benchmarks, or a user who knows the machine); 0 adapts. `told`
    is the batch count llama.cpp was last given; `chosen` every count one evaluation used.
    """

    generation: int
    cores: int = 0
    fixed: int = 0
    sample: Callable[[], CpuSample | None] = read_cpu_sample
    told: int = 0
    chosen: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cores = self.cores or usable_cores()
        self.told = self.told or self.generation  # what open_context gave llama.cpp
        self._last: CpuSample | None = None

    def start(self, to_evaluate: int, chunk: int) -> None:
        """A new evaluation of `to_evaluate` tokens begins; a short one (a keystroke's worth)
        is not worth sampling and keeps the generation count."""
        self.chosen = []
        self._last = self.sample() if not self.fixed and to_evaluate > chunk else None

    def next_chunk(self) -> int:
        """The count for the chunk about to run, from the load during the one before."""
        if self.fixed:
            count = self.fixed
        elif self._last is None or not self.chosen:
            count = self.generation  # not sampling, or the first chunk: the sampling window
        else:
            now = self.sample()
            others = others_busy(self._last, now) if now is not None else None
            if others is None and self.chosen:
                count = self.chosen[-1]  # a chunk too quick to measure: keep on as before
            else:
                self._last = now if others is not None else self._last
                count = choose_batch_threads(self.cores, self.generation, others)
        self.chosen.append(count)
        return count

    def apply(self, llm: Llama, count: int) -> None:
        """Tell llama.cpp (only when the count changes: the call is cheap but not free)."""
        if count != self.told:
            llm._ctx.set_n_threads(self.generation, count)
            self.told = count
