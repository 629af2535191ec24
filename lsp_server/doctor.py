"""`hintwise doctor`: what is installed, what model runs, how fast, and what is wrong."""

from __future__ import annotations

import os
import platform
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from lsp_server import config
from lsp_server.syntax import installed_grammars
from models import bundled
from models.gguf import GGUFError, read_header

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
    from lsp_server.engine_setup import load_engine, model_path
    from models.fim import marker_texts

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
    messages: list[str] = []
    try:
        path = model_path(settings, messages.append)
    except bundled.ModelNotFound as error:
        problems.append(str(error))
        return report
    model: dict = {"path": str(path), "size_mb": round(path.stat().st_size / 1e6, 1)}
    report["model"] = model
    try:
        header = read_header(path, marker_texts())
    except GGUFError as error:
        problems.append(f"the model file is not usable: {error}")
        return report
    model.update(
        name=header.name,
        architecture=header.architecture,
        context_length=header.context_length,
        vocab_size=header.vocab_size,
        chat_template=bool(header.chat_template),
    )
    started = time.perf_counter()
    try:
        engine = load_engine(settings)
    except Exception as error:
        problems.append(str(error))
        return report
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
    )
    if measure:
        speed = engine.measure_speed()
        model.update({key: round(value, 1) for key, value in speed.items()})
    engine.close()
    missing = [
        lang
        for lang in ("python", "javascript", "typescript", "go", "rust", "java", "c", "cpp")
        if lang not in report["grammars"]
    ]
    if missing:
        problems.append(f"no tree-sitter grammar for {', '.join(missing)} (line rules used there)")
    report["gate"] = _gate_check(settings, problems)
    return report


def _gate_check(settings: config.Settings, problems: list[str]) -> dict:
    """Which acceptance gate a server would use, and why not the wanted one."""
    from lsp_server.gate import Gatekeeper

    messages: list[str] = []
    keeper = Gatekeeper(settings.gate, settings.data_path, now=lambda: 0.0, tell=messages.append)
    problems.extend(messages)
    described = keeper.describe()
    if keeper.model is not None:
        described["label"] = keeper.model.label
    return described


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
        if "prompt_tokens_per_s" in model:
            lines.append(
                f"  speed: prompt {model['prompt_tokens_per_s']:.0f} tokens/s, "
                f"decode {model['decode_tokens_per_s']:.0f} tokens/s"
            )
    gate = report.get("gate")
    if gate and gate.get("model"):
        thresholds = gate["thresholds"]
        lines.append(
            f"acceptance gate: {gate.get('label')} ({gate['model']}), shown from "
            f"{thresholds['post']:.2f}, model called from {thresholds['pre']:.2f}"
            + ("" if gate["enabled"] else "; turned off (gate.enabled)")
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
