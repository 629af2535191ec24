"""One `hintwise tune` run, as stages whose results are saved in a work folder:

    cases     the store's kept suggestions (oldest 75% to train, newest 25% held out), the
              replayed repository's holes (80% of its files to train, 20% held out), and the
              regression set
    base      the base model answers every case (training cases: their prompts; held-out and
              regression cases: its answers to compare with)
    train     LoRA training on what the user kept (hintwise.models.tune.train, checkpointed)
    adapter   the trained LoRA written as a GGUF adapter into a new run folder
    tuned     the base model with that adapter answers the held-out and regression cases
    decide    installed only if better on the held-out data and not worse on the regression set

Run again after an interruption (Ctrl-C, kill, `--max-minutes`) with the same options, and it
goes on from the last saved stage; other options start a new run. The work folder is
`<data>/tune/<model key>/`; the run folder with the adapter and its report is the registry's.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hintwise.lsp_server.config import Settings, apply
from hintwise.lsp_server.engines.workers import start_worker
from hintwise.lsp_server.tune import cases as tune_cases
from hintwise.lsp_server.tune import text_windows
from hintwise.lsp_server.tune.cases import Answer, Case
from hintwise.lsp_server.tune.decide import Paired, decide, paired
from hintwise.lsp_server.tune.replay_files import spread
from hintwise.models.files import adapters
from hintwise.models.tune.examples import Example

CHUNK = 16  # cases asked between saves and deadline checks
# Training cases the base model answers, for retraining the gate (replay_gate.py): enough for
# its figures; the other training cases need only their prompts.
GATE_ROWS = 400
Progress = Callable[[str, int, int], None]  # stage, done, total


class Stopped(Exception):
    """The time limit came; the work so far is saved."""


@dataclass(frozen=True)
class Options:
    since_ms: int = 0
    repo: str = ""
    regression: str = ""  # a HumanEval-format file; empty: the standard library replay
    regression_rows: int = 100
    max_train: int = 400
    per_file: int = 4  # holes replayed in each file of the repository
    # What the repository teaches: "text", windows of its training files' text
    # (text_windows.py); "lines", its replayed training lines (the server's prompt, the hidden
    # line as the target). The store's feedback always trains as lines.
    objective: str = "text"
    general: float = text_windows.GENERAL_SHARE  # of the text windows, standard-library code
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields


@dataclass
class Outcome:
    """What a run reports (and writes as the run folder's report.json)."""

    stage: str
    decision: str = ""
    installed: bool = False
    run_dir: str = ""
    figures: dict[str, Any] = field(default_factory=dict)


def work_dir(data_path: Path, base: Path) -> Path:
    """The unfinished run's saved stages. Beside it: `train/` (the training checkpoint) and the
    dequantized base model's cache (`base-*`, models/tune/base.py), which outlives runs: the
    next run loads it in seconds instead of converting the GGUF again."""
    return data_path / "tune" / adapters.model_key(base) / "run"


def train_dir(data_path: Path, base: Path) -> Path:
    return work_dir(data_path, base).parent / "train"


def base_caches(data_path: Path) -> list[Path]:
    """The dequantized base models kept for the next run (about 1 GB each for 270M weights)."""
    return sorted((data_path / "tune").glob("*/base-*"))


class Run:
    """The stages of one run over one work folder; each stage method is skipped when its saved
    result is there."""

    def __init__(
        self,
        settings: Settings,
        base: Path,
        options: Options,
        deadline: float | None = None,
        progress: Progress = lambda stage, done, total: None,
    ):
        self.settings, self.base, self.options = settings, base, options
        self.deadline, self.progress = deadline, progress
        self.work = work_dir(settings.data_path, base)
        self.started = time.monotonic()
        self._fresh_if_changed()

    # -- the work folder -----------------------------------------------------------------------

    def _fresh_if_changed(self) -> None:
        """Other data options start over; other training settings only retrain (the cases and
        the base model's answers to them stay good)."""
        wanted = dataclasses.asdict(self.options)
        state = self._load("options.json")
        if state == wanted:
            return
        if isinstance(state, dict) and _without_train(state) == _without_train(wanted):
            self._forget_training()
        else:
            self.clear()
        self.work.mkdir(parents=True, exist_ok=True)
        self._save("options.json", wanted)

    def _forget_training(self) -> None:
        shutil.rmtree(train_dir(self.settings.data_path, self.base), ignore_errors=True)
        for name in ("tuned-held", "tuned-regression"):
            (self.work / f"answers-{name}.json").unlink(missing_ok=True)
        (self.work / "text-train.json").unlink(missing_ok=True)
        run_dir = self._load("run_dir.json")
        if run_dir and not (Path(run_dir) / adapters.REPORT_FILE).exists():
            shutil.rmtree(run_dir, ignore_errors=True)  # an adapter nobody judged
        (self.work / "run_dir.json").unlink(missing_ok=True)

    def clear(self) -> None:
        """Forget the saved stages and the training checkpoint (the base cache stays)."""
        shutil.rmtree(self.work, ignore_errors=True)
        shutil.rmtree(train_dir(self.settings.data_path, self.base), ignore_errors=True)

    def _load(self, name: str) -> Any:
        try:
            return json.loads((self.work / name).read_text())
        except (OSError, ValueError):
            return None

    def _save(self, name: str, value: Any) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        temporary = self.work / f".{name}.partial"
        temporary.write_text(json.dumps(value, default=_plain))
        temporary.replace(self.work / name)

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    # -- stages ---------------------------------------------------------------------------------

    def answers(self, name: str, cases: Sequence[Case], adapter: Path | None) -> list[Answer]:
        """Every case answered by the base model (`adapter` None) or the tuned one, saved every
        CHUNK cases; Stopped at the deadline with the answers so far kept."""
        saved = self._load(f"answers-{name}.json") or []
        answers = [_answer(case, row) for case, row in zip(cases, saved, strict=False)]
        if len(answers) == len(cases):
            return answers
        worker = start_worker(_with_adapter(self.settings, adapter))
        try:
            if not worker.wait_ready():
                raise RuntimeError(f"the model did not load: {worker.error}")
            while len(answers) < len(cases):
                if self.out_of_time():
                    raise Stopped(f"stopped while the model answered the {name} cases")
                chunk = cases[len(answers) : len(answers) + CHUNK]
                answers += tune_cases.ask(
                    worker,
                    chunk,
                    self.settings,
                    self._counter(name, len(answers), len(cases)),
                )
                self._save(f"answers-{name}.json", [_row(answer) for answer in answers])
        finally:
            worker.stop()
        return answers

    def prompts(self, name: str, cases: Sequence[Case]) -> list[Answer]:
        """Every case's prompt without an answer (training needs no more), saved at once."""
        saved = self._load(f"{name}.json")
        if saved is not None and len(saved) == len(cases):
            return [_answer(case, row) for case, row in zip(cases, saved, strict=True)]
        worker = start_worker(_with_adapter(self.settings, None))
        try:
            if not worker.wait_ready():
                raise RuntimeError(f"the model did not load: {worker.error}")
            built = tune_cases.prompts(
                worker, cases, self.settings, self._counter(name, 0, len(cases))
            )
        finally:
            worker.stop()
        self._save(f"{name}.json", [_row(answer) for answer in built])
        return built

    def text_examples(self) -> list[Example]:
        """Windows of the repository's training files' text as examples, saved at once."""
        from hintwise.lsp_server.tune.replay_files import split_files

        saved = self._load("text-train.json")
        if saved is not None:
            return [text_windows.saved_example(row) for row in saved]
        root = Path(self.options.repo)
        options = self.options
        found = text_windows.mixed(split_files(root)[0], root, options.max_train, options.general)
        worker = start_worker(_with_adapter(self.settings, None))
        try:
            if not worker.wait_ready():
                raise RuntimeError(f"the model did not load: {worker.error}")
            built = text_windows.examples(worker, found)
        finally:
            worker.stop()
        self._save("text-train.json", [text_windows.saved_row(example) for example in built])
        self.progress("text-train", len(built), len(built))
        return built

    def _counter(self, name: str, done: int, total: int) -> Callable[[int], None]:
        return lambda n: self.progress(name, done + n, total)

    def examples(self, answers: Sequence[Answer]) -> list[Example]:
        found = (answer.example() for answer in answers)
        return [example for example in found if example is not None]

    def compare(self, name: str, base: Sequence[Answer], tuned: Sequence[Answer]) -> Paired:
        return paired([a.exact for a in base], [a.exact for a in tuned])


def _without_train(options: dict[str, Any]) -> dict[str, Any]:
    """The options that choose the cases (the others change only what training sees)."""
    return {
        key: value for key, value in options.items() if key not in ("train", "objective", "general")
    }


def _plain(value: Any) -> Any:
    """numpy scalars (the gate's figures) as Python numbers, for JSON."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _with_adapter(settings: Settings, adapter: Path | None) -> Settings:
    value = str(adapter) if adapter is not None else "none"
    changed, _ = apply(settings, {"model.adapter": value})
    return changed


def _row(answer: Answer) -> dict[str, Any]:
    return {
        "origin": answer.case.origin,
        "suggestion": answer.suggestion,
        "prompt": list(answer.prompt),
        "healed": answer.healed,
        "gate": answer.gate,
    }


def _answer(case: Case, row: dict[str, Any]) -> Answer:
    return Answer(case, row["suggestion"], tuple(row["prompt"]), row["healed"], row["gate"])


def case_rows(cases: Sequence[Case]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(case) for case in cases]


def cases_from(rows: Sequence[dict[str, Any]]) -> list[Case]:
    return [Case(**row) for row in rows]


def summary(answers: Sequence[Answer]) -> dict[str, Any]:
    """Exact answers (share and 95% interval) and characters saved, for a report."""
    from hintwise.lsp_server.tune.decide import wilson

    n = len(answers)
    exact = sum(answer.exact for answer in answers)
    expected = sum(len(answer.case.expected) for answer in answers) or 1
    return {
        "n": n,
        "exact": exact / n if n else 0.0,
        "exact_ci95": wilson(exact, n),
        "chars_saved": sum(answer.chars_saved for answer in answers) / expected,
    }


class NotEnoughData(Exception):
    """Too little to train on; the message says how much more is needed."""


def collect(run: Run, store: Path | None, say: Callable[[str], None]) -> dict[str, list[Case]]:
    """The cases of this run (saved: a resumed run asks the same questions)."""
    saved = run._load("cases.json")
    if saved is not None:
        return {name: cases_from(rows) for name, rows in saved.items()}
    from hintwise.lsp_server.tune import data

    options = run.options
    train: list[Case] = []
    held: list[Case] = []
    if store is not None and store.exists():
        stored = data.store_data(store, options.since_ms)
        say(
            f"feedback store: {stored.rows} kept suggestions "
            f"({len(stored.train)} to train, {len(stored.held_out)} held out)"
        )
        if stored.rows >= data.MIN_STORE_ROWS:
            train += stored.train[-options.max_train :]
            held += stored.held_out
        elif not options.repo:
            raise NotEnoughData(data.too_little(stored))
    elif not options.repo:
        raise NotEnoughData(
            "no feedback store yet: it fills as you use completions. To start from your own "
            "code now: hintwise tune --from-repo PATH"
        )
    if options.repo:
        from hintwise.lsp_server.tune import replay

        repo_train, repo_held = replay.repo_cases(Path(options.repo), say, options.per_file)
        if len(repo_train) > options.max_train:  # a sample of every file, not the first ones
            random.Random(0).shuffle(repo_train)
            repo_train = sorted(repo_train[: options.max_train], key=_file_order)
        train += repo_train
        held += repo_held
    regression = regression_cases(options)
    found = {"train": train, "held": held, "regression": regression}
    run._save("cases.json", {name: case_rows(cases) for name, cases in found.items()})
    return found


def _file_order(case: Case) -> tuple[str, int]:
    """Holes of one file together, top to bottom: llama.cpp then reuses the cached start of
    the prompt from one hole to the next, as it does for a user moving down a file."""
    name, _, line = case.origin.rpartition(":")
    return name, int(line) if line.isdigit() else 0


def regression_cases(options: Options) -> list[Case]:
    from hintwise.lsp_server.tune import data, replay

    if options.regression:
        return data.fim_cases(Path(options.regression), options.regression_rows)
    return replay.stdlib_cases(options.regression_rows)


def execute(
    run: Run,
    store: Path | None,
    train_config: Any,
    say: Callable[[str], None] = lambda message: None,
) -> Outcome:
    """Every stage from where the work folder stands; raises Stopped at the deadline."""
    from hintwise.models.tune import gguf_lora, train

    cases = collect(run, store, say)
    replayed = [case for case in cases["train"] if case.origin.startswith("repo:")]
    base_train = run.answers("base-train", spread(replayed, GATE_ROWS), None)  # for the gate
    base_held = run.answers("base-held", cases["held"], None)
    base_regression = run.answers("base-regression", cases["regression"], None)
    gate = retrain_gate(run, base_train, base_held)
    examples = training_examples(run, cases["train"])
    per_case = _seconds_per_case(run)
    reserve = per_case * (len(cases["held"]) + len(cases["regression"])) + 60
    deadline = None if run.deadline is None else run.deadline - reserve
    trained = train.train(
        run.base,
        examples,
        train_dir(run.settings.data_path, run.base),
        train_config,
        deadline=deadline,
        progress=lambda p: run.progress("train", p.step, p.total),
    )
    if not trained.finished:
        raise Stopped(f"stopped after {trained.steps} of {trained.total} training steps")
    run_dir = _run_dir(run)
    adapter = run_dir / adapters.ADAPTER_FILE
    if not adapter.exists():
        gguf_lora.write_gguf_lora(trained.peft_dir, run.base, adapter)
    tuned_held = run.answers("tuned-held", cases["held"], adapter)
    tuned_regression = run.answers("tuned-regression", cases["regression"], adapter)
    user = run.compare("held", base_held, tuned_held)
    regression = run.compare("regression", base_regression, tuned_regression)
    decision = decide(user, regression)
    figures = {
        "examples": len(examples),
        "examples_by_source": dict(Counter(example.source for example in examples)),
        "objective": run.options.objective,
        "held_out": {"base": summary(base_held), "tuned": summary(tuned_held)},
        "held_out_by_source": _by_source(base_held, tuned_held),
        "regression": {"base": summary(base_regression), "tuned": summary(tuned_regression)},
        "gain": user.to_json(),
        "regression_gain": regression.to_json(),
        "training": {
            "steps": trained.steps,
            "seconds": round(trained.seconds, 1),
            "final_loss": trained.losses[-1] if trained.losses else None,
        },
        "adapter_bytes": adapter.stat().st_size,
        "gate": gate,
        "run_seconds": round(time.monotonic() - run.started, 1),
    }
    outcome = Outcome("done", decision.reason, decision.install, str(run_dir), figures)
    report = dataclasses.asdict(outcome) | {"base_model": str(run.base)}
    (run_dir / adapters.REPORT_FILE).write_text(json.dumps(report, indent=2, default=_plain) + "\n")
    if decision.install:
        adapters.install(run.settings.data_path, run.base, run_dir)
    run.clear()  # the next run starts from the data there is then
    return outcome


def training_examples(run: Run, train: Sequence[Case]) -> list[Example]:
    """What the adapter trains on: the store's kept suggestions as lines, and the repository
    as its replayed lines or its files' text (`Options.objective`)."""
    if run.options.objective != "text" or not run.options.repo:
        return run.examples(run.prompts("prompts-train", train))
    stored = [case for case in train if not case.origin.startswith("repo:")]
    found = run.examples(run.prompts("prompts-train", stored)) if stored else []
    return found + run.text_examples()


def retrain_gate(run: Run, train: Sequence[Answer], held: Sequence[Answer]) -> dict[str, Any]:
    """The acceptance gate retrained on the base model's own answers to the replayed files
    (exact = accepted), installed by the same better-or-nothing rule (replay_gate.py); once per
    run. Without a replay there is nothing new for it: `hintwise gate train` learns from the
    store."""
    saved = run._load("gate.json")
    if saved is not None:
        return saved
    if not run.options.repo:
        result: dict[str, Any] = {"reason": "no replay (--from-repo): the gate is unchanged"}
    else:
        from hintwise.lsp_server.tune import replay_gate

        result = replay_gate.retrain_gate(
            [answer for answer in train if answer.case.origin.startswith("repo:")],
            [answer for answer in held if answer.case.origin.startswith("repo:")],
            run.settings,
            install=True,
        )
    run._save("gate.json", result)
    return result


def _run_dir(run: Run) -> Path:
    """The run folder this work folder writes into (chosen once, kept across resumes)."""
    saved = run._load("run_dir.json")
    if saved:
        return Path(saved)
    folder = adapters.new_run_dir(run.settings.data_path, run.base)
    folder.mkdir(parents=True)
    run._save("run_dir.json", str(folder))
    return folder


def _seconds_per_case(run: Run) -> float:
    """How long one answer took in this run so far (for the time kept back for evaluation)."""
    elapsed = time.monotonic() - run.started
    answered = sum(
        len(run._load(f"answers-{name}.json") or []) for name in ("base-held", "base-regression")
    )
    return min(5.0, elapsed / answered) if answered else 2.0


def _by_source(base: Sequence[Answer], tuned: Sequence[Answer]) -> dict[str, Any]:
    sources: dict[str, Any] = {}
    for source in sorted({answer.case.origin.split(":", 1)[0] for answer in base}):
        pick = [i for i, answer in enumerate(base) if answer.case.origin.startswith(source + ":")]
        sources[source] = {
            "base": summary([base[i] for i in pick]),
            "tuned": summary([tuned[i] for i in pick]),
        }
    return sources
