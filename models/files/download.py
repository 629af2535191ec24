"""Opt-in model download: the only code in hintwise that opens a network connection, and it
runs only when the user asks for it (`hintwise models pull`). Nothing calls it at run time.

A download goes to `<name>.part` next to its destination and is renamed only once it is
complete, verified (size, optional sha256) and readable as GGUF, so an interrupted or corrupt
download never sits where the server would load it. Running the same pull again resumes the
`.part` file with an HTTP Range request where the server supports it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hintwise.models.errors import DownloadError, GGUFError
from hintwise.models.files.gguf import read_header

HF_URL = "{endpoint}/{repo}/resolve/{revision}/{file}"
# huggingface_hub's own variable for a mirror or a private hub; the hub itself by default.
HF_ENDPOINT = "https://huggingface.co"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    url: str
    filename: str
    hub: bool = False  # a Hugging Face hub file: it publishes the file's sha256


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def published_sha256(source: Source, timeout: float = 30.0) -> str | None:
    """The sha256 the hub publishes for a file, or None.

    The hub answers a HEAD on a `resolve` URL of a large (LFS) file with a redirect to its
    storage and the header `X-Linked-Etag`, which is the file's sha256; read it before following
    the redirect (the storage's own ETag is something else)."""
    request = urllib.request.Request(source.url, method="HEAD", headers={"User-Agent": "hintwise"})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        response = opener.open(request, timeout=timeout)
        headers = response.headers
        response.close()
    except urllib.error.HTTPError as error:  # the 3xx lands here with redirects off
        headers = error.headers
    except (urllib.error.URLError, OSError) as error:
        raise DownloadError(
            f"cannot reach {source.url}: {getattr(error, 'reason', error)}"
        ) from None
    for name in ("X-Linked-Etag", "ETag"):
        value = (headers.get(name) or "").strip().removeprefix("W/").strip('"').lower()
        if re.fullmatch(r"[0-9a-f]{64}", value):
            return value
    return None


def resolve(source: str) -> Source:
    """A URL, or `hf:OWNER/REPO/FILE.gguf[@REVISION]` (also `hf://...`) for a file on the
    Hugging Face hub (or the hub at $HF_ENDPOINT)."""
    if source.startswith("hf://"):
        source = "hf:" + source.removeprefix("hf://")
    if source.startswith("hf:"):
        match = re.fullmatch(r"hf:([\w.-]+/[\w.-]+)/(.+?\.gguf)(?:@([\w./-]+))?", source)
        if match is None:
            raise DownloadError(
                f"{source!r} is not of the form hf:OWNER/REPO/FILE.gguf[@REVISION], e.g. "
                "hf:Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
            )
        repo, file, revision = match.group(1), match.group(2), match.group(3) or "main"
        endpoint = os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or HF_ENDPOINT
        url = HF_URL.format(endpoint=endpoint, repo=repo, revision=revision, file=file)
        return Source(url, Path(file).name, hub=True)
    if re.match(r"https?://", source):
        name = Path(source.split("?", 1)[0].split("#", 1)[0]).name
        if not name:
            raise DownloadError(f"cannot tell a file name from {source}; pass --name")
        return Source(source, name)
    raise DownloadError(f"{source!r} is neither an http(s) URL nor hf:OWNER/REPO/FILE.gguf")


def pull(
    source: Source,
    directory: Path,
    sha256: str | None = None,
    progress: Callable[[int, int | None], None] = lambda done, total: None,
    timeout: float = 30.0,
) -> Path:
    """Download `source` into `directory`; returns the verified file's path.

    `progress(bytes_so_far, total_or_None)` is called as data arrives. Raises DownloadError.
    """
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / source.filename
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(source.url, headers={"User-Agent": "hintwise"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # the .part is already whole
            return _finish(part, target, sha256)
        hint = (
            " (check the name, or whether the file needs a login)"
            if error.code
            in (
                401,
                403,
                404,
            )
            else ""
        )
        raise DownloadError(f"{source.url}: HTTP {error.code} {error.reason}{hint}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(f"cannot reach {source.url}: {reason}") from None
    with response:
        resumed = have > 0 and response.status == 206
        if not resumed:
            have = 0  # the server ignored the Range header: start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        _check_space(directory, (total or 0) - have)
        try:
            with part.open("ab" if resumed else "wb") as out:
                done = have
                progress(done, total)
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    progress(done, total)
        except OSError as error:
            raise DownloadError(
                f"the download stopped at {_mb(part.stat().st_size if part.exists() else 0)}: "
                f"{error.strerror or error}. Run the same command again to resume."
            ) from None
    if total is not None and part.stat().st_size != total:
        raise DownloadError(
            f"the connection closed after {_mb(part.stat().st_size)} of {_mb(total)}. "
            "Run the same command again to resume."
        )
    return _finish(part, target, sha256)


def _finish(part: Path, target: Path, sha256: str | None) -> Path:
    """Verify the whole `.part` and move it into place; a bad file is deleted, not kept."""
    if sha256:
        digest = hashlib.sha256()
        with part.open("rb") as handle:
            while block := handle.read(CHUNK):
                digest.update(block)
        if digest.hexdigest() != sha256.lower():
            part.unlink()
            raise DownloadError(
                f"the downloaded file's sha256 is {digest.hexdigest()}, not {sha256}: "
                "it was deleted. Check the checksum, or the URL."
            )
    try:
        read_header(part)
    except GGUFError as error:
        part.unlink()
        raise DownloadError(f"the downloaded file is not a usable GGUF model: {error}") from None
    os.replace(part, target)
    return target


def _check_space(directory: Path, needed: int) -> None:
    free = shutil.disk_usage(directory).free
    if needed > free:
        raise DownloadError(
            f"not enough disk space in {directory}: the model needs {_mb(needed)} more, "
            f"{_mb(free)} is free"
        )


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"
