"""Prompt evaluation on every core while the machine is otherwise idle (issue 12, defect 6).

The decision is a plain function tested on numbers; the engine test checks, on the real model,
that llama.cpp was told the count the engine chose for a long prompt and kept the generation
count for generation and for a keystroke's worth of prompt.
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

import pytest

from hintwise.models.llama.threads import (
    BatchThreads,
    CpuSample,
    choose_batch_threads,
    others_busy,
    read_cpu_sample,
)


class Machine:
    """A scripted machine: each sample is 0.1 s after the previous one, during which this
    process used one core and the rest of the machine `others` cores."""

    def __init__(self, others: float):
        self.others = others
        self.calls = 0

    def __call__(self) -> CpuSample:
        self.calls += 1
        at = 0.1 * self.calls
        return CpuSample(at=at, machine_busy_s=at * (1 + self.others), own_s=at)


@pytest.mark.parametrize(
    ("cores", "generation", "others", "expected"),
    [
        (2, 1, 0.0, 2),  # idle 2-core machine: both cores for the prompt
        (2, 1, 0.2, 2),  # a shell or an idle editor does not count
        (2, 1, 0.6, 1),  # something busy beside us (measured while we ran): back to one
        (2, 1, 1.0, 1),
        (2, 1, None, 1),  # load unknown (no /proc/stat): the generation count
        (8, 7, 1.5, 7),  # never fewer than the generation count
        (8, 3, 1.5, 6),  # two cores taken, six free
        (1, 1, 0.0, 1),
    ],
)
def test_the_prompt_gets_the_cores_the_rest_of_the_machine_leaves_free(
    cores, generation, others, expected
):
    assert choose_batch_threads(cores, generation, others) == expected


def test_others_busy_is_the_machine_minus_this_process():
    before = CpuSample(at=10.0, machine_busy_s=100.0, own_s=5.0)
    after = CpuSample(at=10.5, machine_busy_s=101.0, own_s=5.5)  # 1 core-s busy, 0.5 ours
    assert others_busy(before, after) == pytest.approx(1.0)
    assert others_busy(before, CpuSample(at=10.001, machine_busy_s=100.0, own_s=5.0)) is None
    # our process' clock and the kernel's ticks disagree a little: never below zero
    assert others_busy(before, CpuSample(at=11.0, machine_busy_s=100.9, own_s=6.0)) == 0.0


def test_reads_busy_time_from_proc_stat(tmp_path: Path):
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal: busy = all but idle and iowait
    stat.write_text("cpu  100 0 50 1000 30 5 5 10 0 0\ncpu0 50 0 25 500 15 2 2 5 0 0\n")
    sample = read_cpu_sample(str(stat))
    assert sample is not None
    assert sample.machine_busy_s == pytest.approx(170 / os.sysconf("SC_CLK_TCK"))
    assert read_cpu_sample(str(tmp_path / "missing")) is None


def test_a_keystroke_keeps_the_generation_count_without_sampling():
    machine = Machine(others=0.0)
    threads = BatchThreads(generation=1, cores=2, sample=machine)
    threads.start(to_evaluate=5, chunk=64)
    assert threads.next_chunk() == 1
    assert machine.calls == 0


@pytest.mark.parametrize(("others", "expected"), [(0.0, [1, 2, 2, 2]), (1.0, [1, 1, 1, 1])])
def test_a_long_prompt_measures_during_its_first_chunk_then_chooses(others, expected):
    threads = BatchThreads(generation=1, cores=2, sample=Machine(others))
    threads.start(to_evaluate=4 * 64, chunk=64)
    assert [threads.next_chunk() for _ in range(4)] == expected


def test_a_machine_that_becomes_busy_gets_the_cores_back_at_the_next_chunk():
    machine = Machine(others=0.0)
    threads = BatchThreads(generation=1, cores=2, sample=machine)
    threads.start(to_evaluate=4 * 64, chunk=64)
    first = [threads.next_chunk(), threads.next_chunk()]
    machine.others = 0.7
    assert [*first, threads.next_chunk()] == [1, 2, 1]


def test_a_fixed_count_is_used_as_is():
    machine = Machine(others=1.0)
    threads = BatchThreads(generation=1, cores=2, fixed=2, sample=machine)
    threads.start(to_evaluate=4 * 64, chunk=64)
    assert [threads.next_chunk() for _ in range(3)] == [2, 2, 2]
    assert machine.calls == 0


DEEP = Path(sysconfig.get_paths()["stdlib"]) / "difflib.py"


def _told(engine) -> tuple[int, int]:
    import llama_cpp

    context = engine.llm._ctx.ctx
    return llama_cpp.llama_n_threads(context), llama_cpp.llama_n_threads_batch(context)


@pytest.mark.model
def test_the_engine_tells_llama_cpp_the_prompt_thread_count_it_chose(gemma_engine, monkeypatch):
    from hintwise.models.engine import CompletionRequest

    chooser = gemma_engine.prompt_threads
    generation = gemma_engine.info.threads
    monkeypatch.setattr(chooser, "cores", generation + 1)
    lines = DEEP.read_text().split("\n")

    def cold(start: int) -> CompletionRequest:
        # a prefix nothing in the cache shares: another stretch of the file, 1,024 tokens
        return CompletionRequest(
            prefix="\n".join(lines[start : start + 400]) + "\n    ", max_tokens=2
        )

    monkeypatch.setattr(chooser, "sample", Machine(others=0.0))
    idle = gemma_engine.complete(cold(1000), lambda: False)
    assert idle.evaluated_tokens > 2 * 64
    assert idle.prompt_threads == generation + 1
    assert chooser.chosen[0] == generation  # the first chunk is the measuring window
    assert _told(gemma_engine) == (generation, generation + 1)

    monkeypatch.setattr(chooser, "sample", Machine(others=1.0))
    busy = gemma_engine.complete(cold(1500), lambda: False)
    assert busy.evaluated_tokens > 2 * 64
    assert busy.prompt_threads == generation
    assert _told(gemma_engine) == (generation, generation)

    monkeypatch.setattr(chooser, "sample", Machine(others=0.0))
    gemma_engine.complete(cold(1000), lambda: False)  # long again: all cores
    warm = cold(1000)
    warm = CompletionRequest(prefix=warm.prefix + "if", max_tokens=2)
    keystroke = gemma_engine.complete(warm, lambda: False)
    assert keystroke.evaluated_tokens < 64
    assert keystroke.prompt_threads == generation
    assert _told(gemma_engine) == (generation, generation)
