"""Protocol fuzzing of a real `hintwise serve`, longer than the test suite's run and optionally
with a real model (so that fuzzed completions reach the syntax and model code).

    python bench/protocol_fuzz.py --messages 20000 --seeds 1 2 3 [--model PATH.gguf] [--settings]

Per seed: one server, the messages of tests/protocol_fuzz.py sent in chunks of 50; it prints
whether the server lived, requests owed an answer and how many were missing or answered twice,
the answers by error code, internal errors (-32603) by message, and the popups by type.
`--settings` adds fuzzed workspace/didChangeConfiguration messages.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from protocol_fuzz import Fuzzer  # noqa: E402
from raw_lsp import RawServer, nomodel_env  # noqa: E402
from test_protocol_fuzz import _answered, _run  # noqa: E402


def one_run(seed: int, messages: int, model: str | None, settings: bool) -> None:
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        env = nomodel_env(folder)
        if model:
            env["HINTWISE_MODEL"] = model
        server = RawServer(env, folder)
        server.initialize()
        server.drain(quiet=1.0)
        server.messages.clear()
        started = time.monotonic()
        owed, nulls = _run(server, Fuzzer(seed, with_settings=settings), messages)
        deadline = time.monotonic() + 300
        while not owed.keys() <= _answered(server).keys() and time.monotonic() < deadline:
            server.drain(quiet=0.5)
        server.drain(quiet=1.0)
        elapsed = time.monotonic() - started
        answered = _answered(server)
        answers = [m for m in server.messages if "method" not in m]
        codes = collections.Counter(m.get("error", {}).get("code", "result") for m in answers)
        internal = collections.Counter(
            m["error"]["message"][:100] for m in answers if m.get("error", {}).get("code") == -32603
        )
        popups = collections.Counter(
            (m["params"]["type"], m["params"]["message"][:90])
            for m in server.messages
            if m.get("method") == "window/showMessage"
        )
        alive = server.process.poll() is None
        status = server.close()
    print(f"seed {seed}: {messages} messages in {elapsed:.1f} s, alive {alive}, exit {status}")
    missing = sum(1 for key in owed if key not in answered)
    twice = sum(1 for key in owed if answered[key] > 1)
    print(f"  requests owed {sum(owed.values())}, missing {missing}, twice {twice}; "
          f"null-id answers {len(server.answers(None))} of {nulls} owed")  # fmt: skip
    print(f"  answers by code: {dict(codes)}")
    for text, count in internal.most_common():
        print(f"  internal error x{count}: {text}")
    for (kind, text), count in popups.most_common():
        print(f"  popup type {kind} x{count}: {text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--model", help="a GGUF file (default: none; completions are empty)")
    parser.add_argument("--settings", action="store_true", help="fuzz settings changes too")
    args = parser.parse_args()
    for seed in args.seeds:
        one_run(seed, args.messages, args.model, args.settings)


if __name__ == "__main__":
    main()
