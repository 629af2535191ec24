"""Execution grounding (`explain.run`): run the failing test or script in a sandboxed child and
turn the local variables it recorded into facts for the model.

The child (explain/trace_runner.py) runs with: a wall-clock timeout (its whole process group is
killed, forks included), an address-space limit (RLIMIT_AS), a CPU-time limit, no network, no
new processes and no writes outside the workspace (an audit hook it installs before any workspace
code runs), a minimal environment (no proxies, no credentials from the user's environment), and
the workspace as its working directory. It is Python's own audit mechanism, not a container:
it stops ordinary code from doing these things by accident, not native code set on escaping.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

RUNNER = Path(__file__).with_name("trace_runner.py")
MAX_FACTS = 8


@dataclass
class TraceResult:
    facts: list[str] = field(default_factory=list)
    outcome: str = ""  # "failed: ZeroDivisionError: …", "timeout", "passed", …
    blocked: list[str] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)


def target_from_traceback(text: str, root: Path) -> tuple[str, str] | None:
    """("pytest", node id) when pytest's output names a failing test, ("script", path) when the
    outermost frame is a workspace script's module level; None otherwise."""
    node = re.search(r"^(?:FAILED|ERROR) (\S+::\S+)", text, re.M)
    if node:
        return "pytest", node.group(1)
    module = re.search(r'^\s*File "([^"]+)", line \d+, in <module>', text, re.M)
    if module:
        path = Path(module.group(1))
        path = path if path.is_absolute() else root / path
        if path.is_file() and path.resolve().is_relative_to(root.resolve()):
            return "script", str(path.resolve())
    return None


def _limits(memory_mb: int, cpu_s: int):
    def apply() -> None:
        import resource

        os.setsid()
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def _child(config: dict, root: Path, scratch: str, timeout_s: float, memory_mb: int) -> int | None:
    """Run trace_runner.py with `config` (sandboxed, limited); its exit status, or None when it
    was killed at the timeout (its whole process group)."""
    path = Path(scratch) / "config.json"
    path.write_text(json.dumps({"root": str(root.resolve()), **config}))
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(root.resolve()),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": str(root.resolve()),
        "LANG": "C.UTF-8",
    }
    process = subprocess.Popen(
        [sys.executable, str(RUNNER), str(path)],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_limits(memory_mb, int(timeout_s) + 1),
    )
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return None


def run_traced(
    kind: str,
    target: str,
    root: Path,
    file: Path | None,
    function: str | None,
    timeout_s: float = 10,
    memory_mb: int = 512,
) -> TraceResult:
    """Run `target` (a pytest node id or a script) with `function` in `file` traced."""
    with tempfile.TemporaryDirectory(prefix="hintwise-trace-") as scratch:
        out = Path(scratch) / "trace.json"
        config = {
            "file": str(file) if file else None,
            "function": function,
            "kind": kind,
            "target": target,
            "out": str(out),
        }
        status = _child(config, root, scratch, timeout_s, memory_mb)
        if status is None:
            return TraceResult(
                facts=[f"runtime: the run did not finish in {timeout_s:g} s and was stopped"],
                outcome="timeout",
            )
        try:
            record = json.loads(out.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            reason = "out of memory" if status in (-9, 1, 137) else "crashed"
            return TraceResult(
                facts=[f"runtime: the run ended without a record ({reason}, exit status {status})"],
                outcome=reason,
            )
    return summarize(record)


def run_candidates(
    kind: str,
    target: str,
    root: Path,
    file: Path,
    sources: list[str],
    run_timeout_s: float,
    budget_s: float,
    memory_mb: int = 512,
) -> list[str]:
    """Re-run `target` with each source in place of `file` (in memory, the file is not
    written), in order, until one passes or `budget_s` is spent: one outcome per candidate
    tried ("passed", "failed: …", "timeout", "crashed")."""
    with tempfile.TemporaryDirectory(prefix="hintwise-repair-") as scratch:
        out = Path(scratch) / "outcomes.jsonl"
        config = {
            "file": str(file.resolve()),
            "kind": kind,
            "target": target,
            "out": str(out),
            "candidates": sources,
            "run_timeout_s": run_timeout_s,
            "budget_s": budget_s,
        }
        _child(config, root, scratch, budget_s + run_timeout_s + 2, memory_mb)
        try:
            lines = out.read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
    outcomes: list[str] = []
    for line in lines:
        with contextlib.suppress(json.JSONDecodeError):
            outcomes.append(json.loads(line)["outcome"])
    return outcomes


def summarize(record: dict) -> TraceResult:
    """Facts from the recorded events: the last values of the locals before the failure."""
    events = record.get("events") or []
    blocked = record.get("blocked") or []
    exception = record.get("exception")
    facts: list[str] = []
    shown: dict[str, str] = {}
    lines: list[str] = []
    for event in events:
        changed = {k: v for k, v in event.get("locals", {}).items() if shown.get(k) != v}
        shown.update(event.get("locals", {}))
        if event.get("event") == "exception":
            lines.append(f"runtime: line {event['line']} raised {event['exception']}")
        elif changed:
            values = ", ".join(f"{k} = {v}" for k, v in list(changed.items())[:6])
            lines.append(f"runtime: before line {event['line']}: {values}")
    facts += lines[-MAX_FACTS:]
    if not events:
        facts.append("runtime: the traced function did not run")
    for item in blocked[:3]:
        facts.append(f"runtime: the sandbox refused {item}")
    outcome = f"failed: {exception}" if exception else "passed"
    facts.append(f"runtime: outcome {outcome}")
    return TraceResult(facts, outcome, blocked, events)
