"""`hintwise doctor`: what is installed, what model runs, how fast, and what is wrong."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import click

from hintwise.lsp_server import config
from hintwise.lsp_server.cli.common import model_option, overrides, settings_with, url_option
from hintwise.lsp_server.code.syntax import installed_grammars
from hintwise.lsp_server.engines.adapter import AdapterState
from hintwise.lsp_server.engines.choice import (
    FEATURES,
    EngineChoice,
    choice_for,
    load_choice,
    load_engine,
    local_settings,
    model_path,
)
from hintwise.lsp_server.gate.keeper import Gatekeeper
from hintwise.lsp_server.review import static
from hintwise.models.engine import CompletionRequest, HealthReporter, SpeedMeter
from hintwise.models.errors import EngineUnavailable, GGUFError, ModelNotFound
from hintwise.models.files import bundled
from hintwise.models.files.gguf import read_header
from hintwise.models.fim import marker_texts


@click.command()
@model_option
@url_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--no-speed", is_flag=True, help="Skip the prompt/decode speed measurement.")
def doctor(model: str | None, url: str | None, as_json: bool, no_speed: bool) -> None:
    """Check the installation: model, FIM support, speed, data directory, grammars."""
    report = run_checks(settings_with(overrides(model, url=url)), measure=not no_speed)
    click.echo(json.dumps(report, indent=2) if as_json else render(report))
    sys.exit(1 if report["problems"] else 0)


PACKAGES = ("hintwise", "llama-cpp-python", "pygls", "lsprotocol", "tree-sitter", "lightgbm")


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _data_dir_check(path: Path) -> str | None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".doctor-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        return f"the data directory {path} is not writable: {error.strerror or error}"
    return None


def run_checks(settings: config.Settings, measure: bool = True) -> dict:
    """Every check as plain data (the JSON report); `problems` lists what needs fixing."""
    problems: list[str] = []
    report: dict = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "packages": {name: _version(name) for name in PACKAGES},
        "data_dir": str(settings.data_path),
        "bundled_models": bundled.available(),
        "grammars": installed_grammars(),
        "settings": {"model": settings.model_spec()},
        "model": None,
        "problems": problems,
    }
    if (problem := _data_dir_check(settings.data_path)) is not None:
        problems.append(problem)
    choices = {feature: choice_for(settings, feature) for feature in FEATURES}
    report["engines"] = {feature: choice.label() for feature, choice in choices.items()}
    servers = []
    for choice in dict.fromkeys(c for c in choices.values() if c.kind == "http"):
        server = check_server(settings, choice, measure)
        server["used_for"] = [f for f, c in choices.items() if c == choice]
        if "problem" in server:
            problems.append(server["problem"])
        servers.append(server)
    report["servers"] = servers
    for choice in dict.fromkeys(c for c in choices.values() if c.kind == "local"):
        _check_local_model(local_settings(settings, choice.model), report, problems, measure)
    missing = [
        lang
        for lang in ("python", "javascript", "typescript", "go", "rust", "java", "c", "cpp")
        if lang not in report["grammars"]
    ]
    if missing:
        problems.append(f"no tree-sitter grammar for {', '.join(missing)} (line rules used there)")
    report["gate"] = _gate_check(settings, problems)
    report["static_checks"] = _static_check(settings, problems)
    return report


def _static_check(settings: config.Settings, problems: list[str]) -> dict:
    """Whether the review's static checks run: ruff found, and a run on a known defect."""
    if not settings.review.static_checks:
        return {"enabled": False}
    binary = static.find_ruff()
    described: dict = {"enabled": True, "ruff": binary, "version": static.ruff_version(binary)}
    result = static.check("def f():\n    return undefined_name\n", "python")
    if result.problem or not result.findings:
        described["problem"] = result.problem or "ruff ran but found nothing in a known defect"
        problems.append(f"reviews run without static checks: {described['problem']}")
    else:
        described["ms"] = round(result.ms, 1)
    return described


def check_server(settings: config.Settings, choice: EngineChoice, measure: bool) -> dict:
    """Reach an inference server: what it is, whether the key and TLS work, how fast it is."""
    try:
        engine = load_choice(settings, choice)
    except EngineUnavailable as error:
        return {"url": choice.url, "problem": str(error)}
    try:
        found = engine.check() if isinstance(engine, HealthReporter) else {"url": choice.url}
        if "problem" in found or not measure:
            return found
        request = CompletionRequest(
            prefix="def add(a, b):\n    return", max_tokens=16, time_limit_s=30
        )
        try:
            result = engine.complete(request, lambda: False)
        except EngineUnavailable as error:
            return {**found, "problem": str(error)}
        found.update(
            first_token_ms=round(result.prompt_ms, 1),
            decode_tokens_per_s=round(result.generated_tokens / (result.generate_ms / 1000), 1)
            if result.generate_ms
            else None,
            logprobs_returned=bool(result.token_logprobs),
        )
        return found
    finally:
        engine.close()


def _check_local_model(
    settings: config.Settings, report: dict, problems: list[str], measure: bool
) -> None:
    """The local GGUF: found, readable, loadable, and how fast."""
    messages: list[str] = []
    try:
        path = model_path(settings, messages.append)
    except ModelNotFound as error:
        problems.append(str(error))
        return
    model: dict = {"path": str(path), "size_mb": round(path.stat().st_size / 1e6, 1)}
    if report.get("model") is None:
        report["model"] = model
    else:  # explanations or reviews on a second local model
        report.setdefault("more_models", []).append(model)
    try:
        header = read_header(path, marker_texts())
    except GGUFError as error:
        problems.append(f"the model file is not usable: {error}")
        return
    model.update(
        name=header.name,
        architecture=header.architecture,
        context_length=header.context_length,
        vocab_size=header.vocab_size,
        chat_template=bool(header.chat_template),
    )
    started = time.perf_counter()
    lora: list[AdapterState] = []
    try:
        engine = load_engine(settings, on_adapter=lora.append)
    except Exception as error:
        problems.append(str(error))
        return
    if lora and lora[0].source != "none":
        model["adapter"] = lora[0].describe()
        if lora[0].problem:
            problems.append(lora[0].message(path.name))
    model.update(
        load_ms=round((time.perf_counter() - started) * 1000, 1),
        fim=engine.info.fim_family,
        fim_note=(
            f"FIM prompts ({engine.info.fim_family} tokens found in the vocabulary)"
            if engine.info.fim_family
            else "no FIM tokens in the vocabulary: plain prefix continuation"
        ),
        threads=engine.info.threads,
        n_ctx=engine.info.n_ctx,
        amx_workaround=engine.amx_workaround,
    )
    if measure and isinstance(engine, SpeedMeter):
        speed = engine.measure_speed()
        model.update({key: round(value, 1) for key, value in speed.items()})
    engine.close()


def _gate_check(settings: config.Settings, problems: list[str]) -> dict:
    """Which acceptance gate a server would use, and why not the wanted one."""
    messages: list[str] = []
    keeper = Gatekeeper(settings.gate, settings.data_path, now=lambda: 0.0, tell=messages.append)
    problems.extend(messages)
    described = keeper.describe()
    if keeper.model is not None:
        described["label"] = keeper.model.label
    return described


def _adapter_lines(lora: dict | None) -> list[str]:
    """The LoRA adapter completions use: which, how big, what its run measured; or why not."""
    if not lora:
        return ["  adapter: none (`hintwise tune` trains one on your feedback)"]
    which = f"run {lora['run_id']}" if lora.get("run_id") else "model.adapter"
    if lora.get("problem"):
        return [f"  adapter ({which}): NOT USED, {lora['problem']}; fix: {lora['fix']}"]
    size = (lora.get("size_bytes") or 0) / 1e6
    lines = [f"  adapter: {which}, {lora['path']} ({size:.1f} MB), for completions"]
    report = lora.get("report") or {}
    if report.get("decision"):
        lines.append(f"  its run: {report['decision']}")
    held = (report.get("figures") or {}).get("held_out") or {}
    if "base" in held and "tuned" in held:
        lines.append(
            f"  held-out exact answers: base {held['base'].get('exact', 0):.1%} → tuned "
            f"{held['tuned'].get('exact', 0):.1%} ({held['base'].get('n', 0)} cases)"
        )
    return lines


def _static_lines(checks: dict) -> list[str]:
    if not checks.get("enabled"):
        return []
    if "problem" in checks:
        return [f"static checks: not running ({checks['problem']})"]
    return [f"static checks: ruff {checks['version']} ({checks['ruff']})"]


def render(report: dict) -> str:
    """The report as text for a terminal."""
    lines = [
        f"hintwise {report['packages'].get('hintwise')}  (Python {report['python']}, "
        f"{report['cpu_count']} CPUs)"
    ]
    lines.append(f"data directory: {report['data_dir']}")
    model = report.get("model")
    if model:
        lines.append(f"model: {model.get('name', '?')}  {model['path']}  ({model['size_mb']} MB)")
        if "architecture" in model:
            lines.append(
                f"  architecture {model['architecture']}, context {model['context_length']}"
                f" tokens, vocabulary {model['vocab_size']:,}"
            )
        if "fim_note" in model:
            lines.append(f"  {model['fim_note']}")
            lines.append(
                f"  loaded in {model['load_ms']:.0f} ms, {model['threads']} threads, "
                f"n_ctx {model['n_ctx']}"
            )
        lines += _adapter_lines(model.get("adapter"))
        if model.get("amx_workaround"):
            lines.append(
                "  this CPU has AMX: llama.cpp's AMX weight buffers are off (they crash at the "
                "first evaluation, llama.cpp issue #20824)"
            )
        if "prompt_tokens_per_s" in model:
            lines.append(
                f"  speed: prompt {model['prompt_tokens_per_s']:.0f} tokens/s, "
                f"decode {model['decode_tokens_per_s']:.0f} tokens/s"
            )
    lines += _static_lines(report.get("static_checks") or {})
    gate = report.get("gate")
    if gate and gate.get("model"):
        thresholds = gate["thresholds"]
        lines.append(
            f"acceptance gate: {gate.get('label')} ({gate['model']}), shown from "
            f"{thresholds['post']:.2f}, model called from {thresholds['pre']:.2f}"
            + ("" if gate["enabled"] else "; turned off (gate.enabled)")
        )
    engines = report.get("engines") or {}
    if len(set(engines.values())) > 1:
        lines.append("engines: " + ", ".join(f"{k}: {v}" for k, v in engines.items()))
    for server in report.get("servers", []):
        used = ", ".join(server.get("used_for", []))
        lines.append(f"inference server: {server['url']}  (for {used})")
        if "problem" in server:
            lines.append(f"  not usable: {server['problem']}")
            continue
        lines.append(
            f"  {server.get('kind')} serving {server.get('model')}; "
            f"{'FIM ' + server['fim'] if server.get('fim') else 'no FIM: prefix continuation'}; "
            f"log-probs {'on' if server.get('logprobs') else 'off'}"
        )
        if server.get("first_token_ms") is not None:
            lines.append(
                f"  speed: first token after {server['first_token_ms']:.0f} ms, "
                f"decode {server.get('decode_tokens_per_s') or 0:.0f} tokens/s"
            )
    bundled_models = ", ".join(
        f"{name} ({'installed' if ok else 'not installed'})"
        for name, ok in report["bundled_models"].items()
    )
    lines.append(f"bundled models: {bundled_models}")
    lines.append("grammars: " + ", ".join(f"{k} {v}" for k, v in report["grammars"].items()))
    lines.append(
        "packages: " + ", ".join(f"{k} {v or 'missing'}" for k, v in report["packages"].items())
    )
    if report["problems"]:
        lines.append("")
        lines.append("problems:")
        lines.extend(f"  - {problem}" for problem in report["problems"])
    else:
        lines.append("no problems found")
    return "\n".join(lines)
