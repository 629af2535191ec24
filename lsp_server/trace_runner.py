"""Run a script or one pytest test and record local variables line by line in one function.

Executed as a script in a child process by lsp_server.tracing (`python trace_runner.py CONFIG`),
never imported by the server: it must not import hintwise. Before the target runs it installs an
audit hook (which cannot be removed) that refuses network use, starting processes, and opening
files for writing outside the workspace, then `sys.settrace` records, for every line executed in
the traced function, the values of its locals (repr, cut short), as LDB does. The record is
written to a file opened before the hook, as JSON, when the process exits.
"""

import atexit
import json
import os
import sys

MAX_EVENTS = 400
MAX_REPR = 80


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as handle:
        config = json.load(handle)
    root = os.path.realpath(config["root"])
    target_file = os.path.realpath(config["file"]) if config.get("file") else None
    function = config.get("function") or None
    out = open(config["out"], "w", encoding="utf-8")  # noqa: SIM115 (closed at exit)
    events: list = []
    blocked: list = []
    state = {"exception": None}

    def short(value) -> str:
        try:
            text = repr(value)
        except Exception as error:  # a broken __repr__ must not stop the run
            text = f"<repr failed: {type(error).__name__}>"
        return text if len(text) <= MAX_REPR else text[: MAX_REPR - 1] + "…"

    def writable(path) -> bool:
        try:
            real = os.path.realpath(os.fsdecode(path) if not isinstance(path, int) else "")
        except Exception:
            return False
        return real == root or real.startswith(root + os.sep) or real == os.devnull

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args[0], args[1] or "r", args[2] or 0
            writing = any(c in str(mode) for c in "wax+") or flags & (
                os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
            )
            if writing and not isinstance(path, int) and not writable(path):
                blocked.append(f"write to {path}")
                raise PermissionError(f"hintwise sandbox: writing outside the workspace: {path}")
        elif event in ("socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto"):
            blocked.append(event)
            raise PermissionError("hintwise sandbox: no network")
        elif event in (
            "os.fork",
            "os.forkpty",
            "os.system",
            "os.exec",
            "os.posix_spawn",
            "os.spawn",
            "subprocess.Popen",
        ):
            blocked.append(event)
            raise PermissionError(f"hintwise sandbox: {event} is not allowed")
        elif event in ("os.remove", "os.rename", "os.rmdir", "shutil.rmtree", "os.mkdir"):
            path = args[0] if args else ""
            if not isinstance(path, int) and not writable(path):
                blocked.append(f"{event} {path}")
                raise PermissionError(f"hintwise sandbox: {event} outside the workspace")

    def local_trace(frame, event, arg):
        if len(events) >= MAX_EVENTS:
            return None
        if event == "line" or event == "return":
            values = {k: short(v) for k, v in frame.f_locals.items() if not k.startswith("__")}
            events.append({"line": frame.f_lineno, "event": event, "locals": values})
        elif event == "exception":
            values = {k: short(v) for k, v in frame.f_locals.items() if not k.startswith("__")}
            events.append(
                {
                    "line": frame.f_lineno,
                    "event": "exception",
                    "exception": f"{arg[0].__name__}: {str(arg[1])[:MAX_REPR]}",
                    "locals": values,
                }
            )
        return local_trace

    def global_trace(frame, event, arg):
        code = frame.f_code
        if function and code.co_name != function:
            return None
        if target_file and os.path.realpath(code.co_filename) != target_file:
            return None
        return local_trace

    def finish() -> None:
        sys.settrace(None)
        json.dump({"events": events, "blocked": blocked, "exception": state["exception"]}, out)
        out.close()

    atexit.register(finish)
    sys.addaudithook(hook)
    os.chdir(root)
    sys.path.insert(0, root)
    kind, target = config["kind"], config["target"]
    sys.settrace(global_trace)
    try:
        import runpy

        if kind == "pytest":
            # The workspace's own pytest (not a hintwise dependency): run as `python -m pytest`.
            sys.argv = ["pytest", target, "-x", "-q", "-p", "no:cacheprovider"]
            runpy.run_module("pytest", run_name="__main__", alter_sys=True)
        else:
            sys.argv = [target]
            runpy.run_path(target, run_name="__main__")
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if code:
            state["exception"] = f"{kind} exit status {code}"
    except BaseException as error:  # the failure we are here to observe
        state["exception"] = f"{type(error).__name__}: {str(error)[:MAX_REPR]}"
    finally:
        sys.settrace(None)


if __name__ == "__main__":
    main()
