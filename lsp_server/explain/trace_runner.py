"""Run a script or one pytest test and record local variables line by line in one function.

Executed as a script in a child process by explain/tracing.py (`python trace_runner.py CONFIG`),
never imported by the server: it must not import hintwise, and since its folder is then first on
`sys.path`, no module beside it may share a name with the standard library (hence tracebacks.py).
Before the target runs it installs an audit hook (which cannot be removed) that refuses network
use, starting processes, and opening files for writing outside the workspace, then
`sys.settrace` records, for every line executed in the traced function, the values of its locals
(repr, cut short), as LDB does. The record is written to a file opened before the hook, as JSON,
when the process exits.

With `candidates` in the config (explain/repair.py), the runner instead re-runs the target once
per candidate source of one file, each in a child forked from this process before any workspace
code ran (a fresh interpreter state, without the cost of starting Python and importing pytest
again), with the audit hook installed in the child and the candidate served from memory in place
of the file (an import hook, `runpy` and `linecache`): the workspace is never written. One JSON
line per candidate, "passed" or why not, is appended to the record as soon as it is known.
"""

import atexit
import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import linecache
import os
import signal
import sys
import time

MAX_EVENTS = 400
MAX_REPR = 80

NETWORK_EVENTS = ("socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto")
PROCESS_EVENTS = (
    "os.fork",
    "os.forkpty",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "subprocess.Popen",
)
FILE_CHANGE_EVENTS = ("os.remove", "os.rename", "os.rmdir", "shutil.rmtree", "os.mkdir")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def short(value) -> str:
    try:
        text = repr(value)
    except Exception as error:  # a broken __repr__ must not stop the run
        text = f"<repr failed: {type(error).__name__}>"
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 1] + "…"


class Sandbox:
    """The audit hook: what the traced run may not do, and what it tried."""

    def __init__(self, root: str):
        self.root = root
        self.blocked: list = []

    def writable(self, path) -> bool:
        try:
            real = os.path.realpath(os.fsdecode(path) if not isinstance(path, int) else "")
        except Exception:
            return False
        root = self.root
        return real == root or real.startswith(root + os.sep) or real == os.devnull

    def refuse(self, what: str, message: str) -> None:
        self.blocked.append(what)
        raise PermissionError(f"hintwise sandbox: {message}")

    def hook(self, event: str, args: tuple) -> None:
        if event == "open":
            self.on_open(*args[:3])
        elif event in NETWORK_EVENTS:
            self.refuse(event, "no network")
        elif event in PROCESS_EVENTS:
            self.refuse(event, f"{event} is not allowed")
        elif event in FILE_CHANGE_EVENTS:
            path = args[0] if args else ""
            if not isinstance(path, int) and not self.writable(path):
                self.refuse(f"{event} {path}", f"{event} outside the workspace")

    def on_open(self, path, mode, flags) -> None:
        writing = any(c in str(mode or "r") for c in "wax+") or (flags or 0) & WRITE_FLAGS
        if writing and not isinstance(path, int) and not self.writable(path):
            self.refuse(f"write to {path}", f"writing outside the workspace: {path}")


class Tracer:
    """sys.settrace callbacks recording the locals of `function` in `target_file`, per line."""

    def __init__(self, function, target_file):
        self.function = function
        self.target_file = target_file
        self.events: list = []

    def global_trace(self, frame, event, arg):
        code = frame.f_code
        if self.function and code.co_name != self.function:
            return None
        if self.target_file and os.path.realpath(code.co_filename) != self.target_file:
            return None
        return self.local_trace

    def local_trace(self, frame, event, arg):
        if len(self.events) >= MAX_EVENTS:
            return None
        values = {k: short(v) for k, v in frame.f_locals.items() if not k.startswith("__")}
        if event in ("line", "return"):
            self.events.append({"line": frame.f_lineno, "event": event, "locals": values})
        elif event == "exception":
            self.events.append(
                {
                    "line": frame.f_lineno,
                    "event": "exception",
                    "exception": f"{arg[0].__name__}: {str(arg[1])[:MAX_REPR]}",
                    "locals": values,
                }
            )
        return self.local_trace


class Override:
    """Serves `source` in place of the file `path` (a real path): to imports through a finder
    first on `sys.meta_path`, to a script run through `run_script`, and to tracebacks through
    `linecache`. Never written anywhere; no bytecode is cached for it."""

    def __init__(self, path: str, source: str):
        self.path = path
        self.source = source

    def install(self) -> None:
        lines = self.source.splitlines(keepends=True)
        linecache.cache[self.path] = (len(self.source), None, lines, self.path)
        sys.meta_path.insert(0, self)

    def find_spec(self, name, path=None, target=None):
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or not spec.origin or os.path.realpath(spec.origin) != self.path:
            return None
        return importlib.util.spec_from_loader(name, OverrideLoader(name, spec.origin, self))


class OverrideLoader(importlib.abc.Loader):
    """A loader executing the override's source (compiled with the file's own name)."""

    def __init__(self, name: str, origin: str, override: Override):
        self.name, self.origin, self.override = name, origin, override

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        module.__file__ = self.origin
        code = compile(self.override.source, self.origin, "exec", dont_inherit=True)
        exec(code, module.__dict__)


def run_script(target: str, override: Override | None) -> None:
    """`python target`, from the override's source when it replaces that file."""
    import runpy

    if override is None or os.path.realpath(target) != override.path:
        runpy.run_path(target, run_name="__main__")
        return
    import types

    module = types.ModuleType("__main__")
    module.__file__ = target
    sys.modules["__main__"] = module
    exec(compile(override.source, target, "exec", dont_inherit=True), module.__dict__)


def run(kind: str, target: str, override: Override | None = None) -> str | None:
    """Run the target; the failure it ended with, if any (the failure we are here to observe)."""
    import runpy

    try:
        if kind == "pytest":
            # The workspace's own pytest (not a hintwise dependency): run as `python -m pytest`.
            sys.argv = ["pytest", target, "-x", "-q", "-p", "no:cacheprovider"]
            runpy.run_module("pytest", run_name="__main__", alter_sys=True)
        else:
            sys.argv = [target]
            run_script(target, override)
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        return f"{kind} exit status {code}" if code else None
    except BaseException as error:
        return f"{type(error).__name__}: {str(error)[:MAX_REPR]}"
    finally:
        sys.settrace(None)
    return None


def candidate_child(config: dict, root: str, source: str, report: int) -> None:
    """In a forked child: sandbox, override, run; write the outcome to the pipe `report`."""
    sandbox = Sandbox(root)
    sys.addaudithook(sandbox.hook)
    override = Override(os.path.realpath(config["file"]), source)
    override.install()
    failure = run(config["kind"], config["target"], override)
    os.write(report, ("passed" if failure is None else f"failed: {failure}").encode()[:400])


def try_candidate(config: dict, root: str, source: str, timeout_s: float) -> str:
    """One candidate in a forked child, killed after `timeout_s`: "passed", "failed: …",
    "timeout" or "crashed"."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.setpgid(0, 0)
        try:
            candidate_child(config, root, source, write)
        finally:
            os._exit(0)
    os.close(write)
    deadline = time.monotonic() + timeout_s
    while True:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.005)
    if not done:
        for kill in (os.killpg, os.kill):
            with contextlib.suppress(OSError):
                kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as pipe:
        outcome = pipe.read().decode(errors="replace")
    return outcome if done else "timeout"


def try_candidates(config: dict, root: str, out) -> None:
    """Each candidate source in turn until one passes, the runs or the time run out."""
    if config["kind"] == "pytest":
        # The workspace's pytest, imported once before the forks (it is no workspace code).
        importlib.import_module("pytest")
    os.chdir(root)
    sys.path.insert(0, root)
    deadline = time.monotonic() + config.get("budget_s", 20)
    for index, source in enumerate(config["candidates"]):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        outcome = try_candidate(config, root, source, min(config.get("run_timeout_s", 5), left))
        out.write(json.dumps({"index": index, "outcome": outcome or "crashed"}) + "\n")
        out.flush()
        if outcome == "passed" and config.get("stop_at_pass", True):
            break


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as handle:
        config = json.load(handle)
    root = os.path.realpath(config["root"])
    if config.get("candidates") is not None:
        with open(config["out"], "w", encoding="utf-8") as out:
            try_candidates(config, root, out)
        return
    target_file = os.path.realpath(config["file"]) if config.get("file") else None
    out = open(config["out"], "w", encoding="utf-8")  # noqa: SIM115 (closed at exit)
    sandbox = Sandbox(root)
    tracer = Tracer(config.get("function") or None, target_file)
    state: dict[str, str | None] = {"exception": None}

    def finish() -> None:
        sys.settrace(None)
        record = {"events": tracer.events, "blocked": sandbox.blocked, **state}
        json.dump(record, out)
        out.close()

    atexit.register(finish)
    sys.addaudithook(sandbox.hook)
    os.chdir(root)
    sys.path.insert(0, root)
    sys.settrace(tracer.global_trace)
    state["exception"] = run(config["kind"], config["target"])


if __name__ == "__main__":
    main()
