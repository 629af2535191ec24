"""What the `hintwise` subcommands share: the --model and --url options, settings from the
environment and the flags, and FILE:LINE[:COL] locations."""

from __future__ import annotations

from pathlib import Path

import click

from hintwise.lsp_server import config
from hintwise.models.files.bundled import is_bundled_name


def overrides(model: str | None, extra: dict | None = None, url: str | None = None) -> dict:
    """Dotted settings from the command's flags (they win over every other source)."""
    values = dict(extra or {})
    if url:
        values.update({"engine.kind": "http", "engine.url": url})
    if model:
        values["model.name" if is_bundled_name(model) else "model.path"] = model
        if is_bundled_name(model):
            values["model.path"] = ""
    return values


def settings_with(values: dict) -> config.Settings:
    """The environment's settings with `values` applied; a bad value is said, and ignored."""
    settings, problems = config.apply(config.from_environment(), values)
    for problem in problems:
        click.echo(f"hintwise: ignoring a setting: {problem}", err=True)
    return settings


def parse_location(location: str) -> tuple[Path, int, int | None]:
    """FILE:LINE[:COL], 1-based; a missing column means the end of the line."""
    parts = location.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return Path(parts[0]), int(parts[1]), int(parts[2])
    parts = location.rsplit(":", 1)
    if len(parts) == 2 and parts[1].isdigit():
        return Path(parts[0]), int(parts[1]), None
    raise click.BadParameter("expected FILE:LINE:COL (1-based), e.g. examples/primes.py:12:9")


def read_source(path: Path) -> str:
    """A file's text as the editor would show it; a clear error when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as error:
        raise click.ClickException(f"cannot read {path}: {error.strerror}") from None


model_option = click.option(
    "--model",
    "-m",
    metavar="PATH|NAME",
    help="A .gguf file, or a bundled model name (gemma3-270m, smollm2-135m). "
    "Default: $HINTWISE_MODEL, else gemma3-270m.",
)

url_option = click.option(
    "--url",
    metavar="URL",
    help="Use the OpenAI-compatible inference server at URL (llama-server, "
    "python -m llama_cpp.server, vLLM, Ollama) instead of a local model.",
)
