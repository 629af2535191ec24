"""`hintwise gate …`: train, evaluate and inspect the acceptance gate."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click

from hintwise.lsp_server import config
from hintwise.lsp_server.gate.inputs import EventsFileError, read_cups
from hintwise.lsp_server.gate.keeper import Gatekeeper, personal_dir
from hintwise.lsp_server.gate.training import (
    NotEnoughData,
    cups_data,
    evaluate,
    store_data,
    survival_weighted,
    train_default,
    train_personal,
)
from hintwise.models.errors import GateModelError
from hintwise.models.gate import model as gate_model
from hintwise.models.gate.features import STAGES
from hintwise.models.gate.plot import evaluation_chart
from hintwise.telemetry import default_path, labels


def _number(value) -> str:
    return (
        "n/a"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{value:.3f}" if isinstance(value, float) else str(value))
    )


def _percent(value) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value * 100:.1f}%"


def _store_path(settings: config.Settings) -> Path:
    path = default_path(settings.data_path)
    if not path.exists():
        raise click.ClickException(
            f"no feedback store yet at {path}: it fills as you use completions (telemetry.enabled)."
        )
    return path


def _active(settings: config.Settings, model_dir: Path | None) -> gate_model.GateModel:
    if model_dir is not None:
        if model_dir.is_file():  # one of the gate's files: the gate is the folder around it
            model_dir = model_dir.parent
        try:
            return gate_model.load(model_dir)
        except GateModelError as error:
            raise click.ClickException(str(error)) from None
    messages: list[str] = []
    keeper = Gatekeeper(settings.gate, settings.data_path, now=lambda: 0.0, tell=messages.append)
    for message in messages:
        click.echo(message, err=True)
    if keeper.model is None:
        raise click.ClickException("no acceptance gate could be loaded")
    return keeper.model


def write_provenance(directory: Path, meta: dict) -> Path:
    """PROVENANCE.md beside a trained gate: source, license, command, date, metrics."""
    validation = meta["validation"]
    lines = [
        f"# Acceptance gate: {meta.get('label', directory.name)}",
        "",
        f"- Data: {meta['source']['data']}",
        f"- License of the data: {meta['source']['license']}",
        f"- Command: `{meta['command']}`",
        f"- Trained: {meta['trained']}",
        f"- Validation: {validation['method']}, {validation['rows']} suggestions",
        f"- Thresholds (keep {meta['keep']:.0%} of accepted suggestions): "
        + ", ".join(f"{stage} {value:.4f}" for stage, value in meta["thresholds"].items()),
        "",
        "| Stage | AUC | 95% interval | per-programmer AUC median (IQR) | hidden at 95% kept |",
        "|---|---|---|---|---|",
    ]
    for stage in STAGES:
        part = validation[stage]
        spread = part.get("auc_per_group", {})
        interval = part.get("auc_ci95", [math.nan, math.nan])
        new_user = part.get("new_user_at_95", part["keep_95"])
        lines.append(
            f"| {stage} | {part['auc']:.3f} | {interval[0]:.3f}–{interval[1]:.3f} | "
            f"{spread.get('median', math.nan):.3f} ({spread.get('q25', math.nan):.3f}–"
            f"{spread.get('q75', math.nan):.3f}) | {new_user['hidden']:.1%} of requests "
            f"({new_user['accepted_kept']:.1%} of accepted kept) |"
        )
    lines += [
        "",
        "The model files are LightGBM's text format; `gate.json` holds the thresholds, the",
        "feature version and this validation in full. Reproduce with the command above.",
    ]
    path = directory / "PROVENANCE.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@click.group()
def gate() -> None:
    """The acceptance gate: when a suggestion is worth computing and showing."""


@gate.command()
@click.option(
    "--cups",
    "cups",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Train on a file in the CUPS format (how the shipped default is made).",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write the model (default with --cups: the shipped default's folder).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def train(cups: Path | None, output: Path | None, as_json: bool) -> None:
    """Train a gate: on your own feedback store (installed only if it beats the current gate
    on your most recent suggestions), or with --cups on public data."""
    settings = config.from_environment()
    if cups is not None:
        target = output or gate_model.DEFAULT_DIR
        try:
            command = f"hintwise gate train --cups {cups}"
            meta = train_default(cups, target, command + (f" --output {output}" if output else ""))
        except EventsFileError as error:
            raise click.ClickException(str(error)) from None
        write_provenance(target, meta)
        if as_json:
            click.echo(json.dumps(meta, indent=2))
            return
        for stage in STAGES:
            part = meta["validation"][stage]
            low, high = part["auc_ci95"]
            click.echo(
                f"{stage:>4}: AUC {part['auc']:.3f} (95% interval {low:.3f}–{high:.3f}, "
                f"leave-one-programmer-out); at 95% of accepted kept it hides "
                f"{part['new_user_at_95']['hidden']:.1%} of requests"
            )
        click.echo(f"written to {target}")
        return
    path = _store_path(settings)
    current = _active(settings, None)
    try:
        result = train_personal(path, settings.data_path, current, settings.gate.min_labels)
    except NotEnoughData as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    new, old = result["auc_new"], result["auc_current"]
    click.echo(
        f"{result['rows']} answered suggestions (label: {result['label']}); "
        f"on your latest {result['held_out']}:"
    )
    for stage in STAGES:
        click.echo(f"  {stage:>4} AUC: current {old[stage]:.3f}, new {new[stage]:.3f}")
    if result["installed"]:
        click.echo(f"installed in {result['output']}; a running server picks it up by itself")
    else:
        click.echo(f"kept the current gate ({result['current']}): the new one is not better")


@gate.command("eval")
@click.option(
    "--events",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A labelled file in the CUPS format.",
)
@click.option("--store", is_flag=True, help="Evaluate on your own feedback store.")
@click.option(
    "--model",
    "model_dir",
    type=click.Path(exists=True, path_type=Path),
    help="A gate directory or one of its files (default: the installed gate).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option(
    "--chart",
    "chart_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("hintwise-gate.png"),
    show_default=True,
    help="Where to draw ROC, calibration and hidden-vs-kept.",
)
def eval_(
    events: Path | None, store: bool, model_dir: Path | None, as_json: bool, chart_path: Path
) -> None:
    """AUC, rejected hidden at 90%/95% of accepted kept, calibration, model calls avoided."""
    if (events is None) == (not store):
        raise click.UsageError("give exactly one of --events FILE or --store")
    settings = config.from_environment()
    model = _active(settings, model_dir)
    extra: dict = {}
    if events is not None:
        try:
            data = cups_data(list(read_cups(events)))
        except EventsFileError as error:
            raise click.ClickException(str(error)) from None
        source = str(events)
    else:
        path = _store_path(settings)
        found = store_data(path)
        data = found.data
        if len(data) == 0 or data.labels.all() or not data.labels.any():
            raise click.ClickException(
                f"{len(data)} answered suggestions in {path}; evaluation needs both accepted "
                "and rejected ones"
            )
        source = f"{path} (label: {found.label})"
        extra["survival"] = survival_weighted(path)
    report = {"source": source, **evaluate(model, data), **extra}
    scores = {stage: model.stage(stage).scores(data.stage(stage)) for stage in STAGES}
    report["chart"] = str(
        evaluation_chart(data.labels, scores, chart_path, f"{model.label} on {source}")
    )
    if as_json:
        click.echo(json.dumps(report, indent=2, default=float))
        return
    click.echo(f"gate {model.directory} on {source}: {report['rows']} suggestions")
    for stage in STAGES:
        part = report[stage]
        click.echo(
            f"  {stage:>4}: AUC {_number(part['auc'])}, calibration error "
            f"{_number(part['calibration']['ece'])}; rejected hidden at 90% / 95% of accepted "
            f"kept: {_percent(part['keep_90']['rejected_hidden'])} / "
            f"{_percent(part['keep_95']['rejected_hidden'])}"
        )
    at = report["pre"]["at_model_threshold"]
    click.echo(
        f"  model calls avoided at the installed threshold: {_percent(at['hidden'])} "
        f"(accepted kept {_percent(at['accepted_kept'])})"
    )
    if "survival" in report:
        survival = report["survival"]
        click.echo(
            f"  acceptance {_percent(survival['acceptance'])}, survival-weighted "
            f"{_percent(survival['survival_weighted_acceptance'])}"
        )
    click.echo(f"  chart: {report['chart']}")


@gate.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def status(as_json: bool) -> None:
    """Which gate is installed, its thresholds, and how close a personal gate is."""
    settings = config.from_environment()
    model = _active(settings, None)
    path = default_path(settings.data_path)
    counts = labels.counts(path) if path.exists() else {"labelled": 0}
    info: dict[str, Any] = {
        "model": str(model.directory),
        "label": model.label,
        "thresholds": {stage: model.stage(stage).threshold for stage in STAGES},
        "personal_dir": str(personal_dir(settings.data_path)),
        "store": str(path),
        "labelled": counts,
        "min_labels": settings.gate.min_labels,
        "validation_auc": {
            stage: model.meta.get("validation", {}).get(stage, {}).get("auc") for stage in STAGES
        },
    }
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"installed gate: {model.label} ({model.directory})")
    click.echo(
        "  thresholds: "
        + ", ".join(f"{s} {v:.3f}" for s, v in info["thresholds"].items())
        + "; validation AUC: "
        + ", ".join(f"{s} {_number(v)}" for s, v in info["validation_auc"].items())
    )
    missing = settings.gate.min_labels - counts["labelled"]
    click.echo(
        f"  your answered suggestions: {counts['labelled']}"
        + (f" ({missing} more before `hintwise gate train` can train yours)" if missing > 0 else "")
    )
