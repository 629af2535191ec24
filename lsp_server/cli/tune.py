"""`hintwise tune`: a LoRA adapter for the completion model, trained on this user's feedback
(and, with --from-repo, on a replay of their own code), installed only when it is better.

Runs at low CPU priority, shows a progress bar with an ETA per stage, stops cleanly at
--max-minutes or Ctrl-C and continues from there when run again. --status, --revert and
--import manage the installed adapters without training.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from hintwise.lsp_server import config
from hintwise.lsp_server.cli.common import model_option, overrides, settings_with
from hintwise.lsp_server.engines.choice import model_path
from hintwise.models.errors import ModelLoadError, ModelNotFound
from hintwise.models.files import adapters
from hintwise.telemetry import default_path

PAUSED_EXIT = 3  # stopped at the time limit or interrupted; run again to continue
TUNE_INSTALL = 'pip install "hintwise[tune]"'
_LABELS = {
    "base-train": "base model, training cases (for the gate)",
    "prompts-train": "training prompts",
    "text-train": "training text",
    "base-held": "base model, held-out cases",
    "base-regression": "base model, regression set",
    "train": "training",
    "tuned-held": "tuned model, held-out cases",
    "tuned-regression": "tuned model, regression set",
}


@click.command("tune")
@model_option
@click.option("--since", metavar="DATE", help="Only feedback from this date on (YYYY-MM-DD).")
@click.option(
    "--from-repo",
    "repo",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Also replay this repository (hide a line, ask, compare): a day-one adapter.",
)
@click.option("--max-minutes", type=float, default=60.0, show_default=True, help="Time limit.")
@click.option(
    "--max-examples",
    type=click.IntRange(1),
    default=400,
    show_default=True,
    help="At most this many training examples (each source's most recent or a sample).",
)
@click.option(
    "--holes-per-file",
    type=click.IntRange(1, 1000),
    default=4,
    show_default=True,
    help="With --from-repo: lines replayed in each file.",
)
@click.option(
    "--objective",
    type=click.Choice(["text", "lines"]),
    default=None,
    help="With --from-repo: train on its files' text (the default), or on its replayed lines.",
)
@click.option(
    "--general-share",
    type=click.FloatRange(0, 0.9),
    default=None,
    help="With --from-repo: the share of the training windows that are general Python (the "
    "standard library's), so the adapter keeps the code it knew (default 0.2).",
)
@click.option(
    "--regression",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A HumanEval single-line infilling file to use as the regression set "
    "(default: lines of the installed Python standard library).",
)
@click.option(
    "--regression-size",
    type=click.IntRange(0, 10_000),
    default=100,
    show_default=True,
    help="Cases in the regression set.",
)
@click.option(
    "--epochs",
    type=click.FloatRange(0.1, 20),
    default=None,
    help="Passes over the training examples (default 1).",
)
@click.option(
    "--learning-rate",
    type=click.FloatRange(1e-6, 1e-1),
    default=None,
    help="The LoRA training's step size (default 2e-4).",
)
@click.option("--status", is_flag=True, help="Show the installed adapter and unfinished runs.")
@click.option("--revert", is_flag=True, help="Go back to the adapter installed before.")
@click.option(
    "--import",
    "import_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    metavar="PEFT_DIR",
    help="Convert a PEFT LoRA trained elsewhere into the GGUF the server loads, and install it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def tune(
    model: str | None,
    since: str | None,
    repo: Path | None,
    max_minutes: float,
    max_examples: int,
    holes_per_file: int,
    objective: str | None,
    general_share: float | None,
    regression: Path | None,
    regression_size: int,
    epochs: float | None,
    learning_rate: float | None,
    status: bool,
    revert: bool,
    import_dir: Path | None,
    as_json: bool,
) -> None:
    """Train a LoRA adapter for completions on your feedback; install it only if it is better."""
    since_ms = _since_ms(since)
    settings = settings_with(overrides(model))
    if settings.engine.kind != "local":
        raise click.ClickException("tune trains a local GGUF model; engine.kind is not local")
    base = _base(settings)
    if status:
        _echo(_status(settings, base), as_json)
    elif revert:
        _echo(_revert(settings, base), as_json)
    elif import_dir is not None:
        _echo(_import(settings, base, import_dir), as_json)
    else:
        options = _options(
            since_ms, repo, (max_examples, holes_per_file), regression, regression_size
        )
        if objective is not None and repo is None:
            raise click.UsageError(f"--objective {objective} is for a repository: add --from-repo")
        if general_share is not None and repo is None:
            raise click.UsageError("--general-share is for a repository: add --from-repo")
        objective = objective or "text"
        options = dataclasses.replace(options, objective=objective)
        if general_share is not None:
            options = dataclasses.replace(options, general=general_share)
        if objective == "text" and repo is not None and learning_rate is None:
            from hintwise.lsp_server.tune.text_windows import LEARNING_RATE

            learning_rate = LEARNING_RATE
        training = {"epochs": epochs, "learning_rate": learning_rate}
        chosen = {key: value for key, value in training.items() if value is not None}
        if chosen:
            options = dataclasses.replace(options, train=chosen)
        _train(settings, base, options, max_minutes, as_json)


def _base(settings: config.Settings) -> Path:
    try:
        return model_path(settings, lambda message: click.echo(message, err=True))
    except (ModelNotFound, ModelLoadError) as error:
        raise click.ClickException(str(error)) from None


def _echo(payload: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo(payload["message"])


def _status(settings: config.Settings, base: Path) -> dict[str, Any]:
    from hintwise.lsp_server.tune.run import base_caches, work_dir

    current = adapters.installed(settings.data_path, base)
    runs = adapters.runs(settings.data_path, base)
    unfinished = (work_dir(settings.data_path, base) / "options.json").exists()
    lines = [f"base model: {base}"]
    if current is None:
        lines.append("adapter: none installed (completions use the base model)")
    else:
        lines.append(f"adapter: {current.path} ({current.size_bytes / 1e6:.1f} MB)")
        lines.append(f"  {current.report.get('decision') or 'no report'}")
    lines.append(
        f"runs: {len(runs)}"
        + ("; an unfinished run continues with `hintwise tune`" if unfinished else "")
    )
    caches = base_caches(settings.data_path)
    cache_bytes = sum(f.stat().st_size for c in caches for f in c.rglob("*") if f.is_file())
    if caches:
        lines.append(
            f"base model cache: {cache_bytes / 1e9:.1f} GB in {caches[0].parent.parent} "
            "(makes the next run start in seconds; safe to delete)"
        )
    return {
        "message": "\n".join(lines),
        "base_model": str(base),
        "installed": _adapter_json(current),
        "runs": [_adapter_json(run) for run in runs],
        "unfinished": unfinished,
        "base_cache_bytes": cache_bytes,
    }


def _adapter_json(adapter: adapters.Adapter | None) -> dict[str, Any] | None:
    if adapter is None:
        return None
    return {
        "run": adapter.run_id,
        "path": str(adapter.path),
        "bytes": adapter.size_bytes,
        "report": adapter.report,
    }


def _revert(settings: config.Settings, base: Path) -> dict[str, Any]:
    before = adapters.installed(settings.data_path, base)
    if before is None:
        return {"message": "no adapter is installed; nothing to revert", "installed": None}
    now = adapters.revert(settings.data_path, base)
    message = (
        f"reverted {before.run_id}; now using {now.run_id}"
        if now
        else f"reverted {before.run_id}; completions use the base model"
    )
    return {"message": message, "installed": _adapter_json(now)}


def _import(settings: config.Settings, base: Path, peft_dir: Path) -> dict[str, Any]:
    gguf_lora = _tune_module("gguf_lora")
    run = adapters.new_run_dir(settings.data_path, base)
    run.mkdir(parents=True)
    try:
        gguf_lora.import_peft(peft_dir, base, run / adapters.ADAPTER_FILE)
    except (ValueError, OSError) as error:
        shutil.rmtree(run, ignore_errors=True)
        raise click.ClickException(f"cannot import {peft_dir}: {error}") from None
    report = {
        "decision": f"imported from {peft_dir}; not evaluated here (hintwise tune --revert "
        "undoes it)",
        "imported_from": str(peft_dir),
    }
    (run / adapters.REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    installed = adapters.install(settings.data_path, base, run)
    return {
        "message": f"installed {installed.path} ({installed.size_bytes / 1e6:.1f} MB)",
        "installed": _adapter_json(installed),
    }


def _tune_module(name: str) -> Any:
    """A module of hintwise.models.tune, or the install command when the extra is missing."""
    import importlib

    try:
        return importlib.import_module(f"hintwise.models.tune.{name}")
    except ImportError as error:
        raise click.ClickException(
            f"hintwise tune needs the tune extra ({error.name} is not installed): {TUNE_INSTALL}"
        ) from None


def _since_ms(since: str | None) -> int:
    if not since:
        return 0
    try:
        day = datetime.fromisoformat(since)
    except ValueError:
        raise click.BadParameter(
            f"{since!r} is not a date (YYYY-MM-DD)", param_hint="--since"
        ) from None
    if day.tzinfo is None:
        day = day.astimezone()  # the user's local midnight
    return int(day.astimezone(UTC).timestamp() * 1000)


class _Bars:
    """One click progress bar (with its ETA) per stage, on stderr, closed when the next
    stage starts."""

    def __init__(self) -> None:
        self.stage = ""
        self.bar: Any = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = click.progressbar(
                range(max(total, 1)),
                label=_LABELS.get(stage, stage),
                show_eta=True,
                show_pos=True,
                file=sys.stderr,
            )
            self.bar.__enter__()
        self.bar.update(done - self.bar.pos)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _options(
    since_ms: int,
    repo: Path | None,
    sizes: tuple[int, int],
    regression: Path | None,
    regression_size: int,
) -> Any:
    from hintwise.lsp_server.tune.run import Options

    return Options(
        since_ms=since_ms,
        repo=str(repo.resolve()) if repo else "",
        regression=str(regression.resolve()) if regression else "",
        regression_rows=regression_size,
        max_train=sizes[0],
        per_file=sizes[1],
    )


def _train(
    settings: config.Settings, base: Path, options: Any, max_minutes: float, as_json: bool
) -> None:
    _quiet_hugging_face()
    train = _tune_module("train")
    runtime = _tune_module("runtime")
    try:
        runtime.require()  # before any work: not after half an hour of asking the model
    except runtime.TuneUnavailable as error:
        raise click.ClickException(str(error)) from None
    from hintwise.lsp_server.tune import run as tune_run

    _lower_priority()
    deadline = time.monotonic() + max_minutes * 60
    bars = _Bars()
    say = (lambda message: None) if as_json else (lambda m: click.echo(m, err=True))
    work = tune_run.Run(settings, base, options, deadline, bars)
    store = default_path(settings.data_path)
    try:
        outcome = tune_run.execute(work, store, train.TrainConfig(**options.train), say)
    except tune_run.NotEnoughData as error:
        raise click.ClickException(str(error)) from None
    except (RuntimeError, OSError, ValueError) as error:  # no model, a full disk, no examples
        raise click.ClickException(
            f"{error}. The work so far is kept: run again to go on."
        ) from None
    except (tune_run.Stopped, KeyboardInterrupt) as error:
        bars.close()
        reason = str(error) or "interrupted"
        payload = {
            "stage": "stopped",
            "message": f"{reason}. The work so far is saved: run "
            "the same `hintwise tune` command again to continue.",
        }
        _echo(payload, as_json)
        raise SystemExit(PAUSED_EXIT) from None
    finally:
        bars.close()
    _echo(_outcome_json(outcome), as_json)


def _quiet_hugging_face() -> None:
    """Nothing from the hub, ever (the base model is the local GGUF), and no library chatter
    in the middle of the progress bars."""
    for name, value in (
        ("HF_HUB_OFFLINE", "1"),
        ("HF_DATASETS_OFFLINE", "1"),
        ("TRANSFORMERS_VERBOSITY", "error"),
        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
        ("TOKENIZERS_PARALLELISM", "false"),
        ("TQDM_DISABLE", "1"),
    ):
        os.environ.setdefault(name, value)
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning, module="peft")
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")


def _lower_priority() -> None:
    """Nice the process so that the editor and the language server keep the CPU they need
    (training uses every core it gets for as long as it is allowed)."""
    with contextlib.suppress(OSError):
        os.nice(10)


def _outcome_json(outcome: Any) -> dict[str, Any]:
    figures = outcome.figures
    held = figures["held_out"]
    lines = [
        ("installed: " if outcome.installed else "not installed: ") + outcome.decision,
        f"held-out exact answers: base {held['base']['exact']:.1%} → tuned "
        f"{held['tuned']['exact']:.1%} ({held['base']['n']} cases); characters saved "
        f"{held['base']['chars_saved']:.1%} → {held['tuned']['chars_saved']:.1%}",
    ]
    regression = figures["regression"]
    lines.append(
        f"regression set: {regression['base']['exact']:.1%} → {regression['tuned']['exact']:.1%}"
        f" ({regression['base']['n']} cases)"
    )
    lines.append(
        f"trained {figures['training']['steps']} steps on {figures['examples']} examples in "
        f"{figures['training']['seconds'] / 60:.1f} min; adapter "
        f"{figures['adapter_bytes'] / 1e6:.1f} MB in {outcome.run_dir}"
    )
    return {
        "message": "\n".join(lines),
        "installed": outcome.installed,
        "decision": outcome.decision,
        "run_dir": outcome.run_dir,
        "figures": figures,
    }
