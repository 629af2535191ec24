"""The rest of the project in the prompt: recently viewed chunks of other files, and the
definitions of the names this file imports from its siblings, above the file being edited.

Two sources, as the peers use them:

* **A ring of chunks** (llama.vim's): up to 16 chunks of 64 lines around where the user was in
  a file, taken when a file is opened, saved, closed or left for another one; a chunk identical
  to one in the ring is not added again, and one very like a new chunk is evicted by it.
* **Definitions** (tree-sitter, `code.definitions`): for each `from <sibling> import name` of
  the file, the name's signature and docstring line (a short definition whole), read from the
  open document or the workspace file, with its path as a comment; the names used nearest the
  cursor come last, closest to the code.

**The prompt cache decides the shape.** llama.cpp reuses the longest common token prefix of two
prompts, and the preamble comes first: a preamble that changed on every keystroke would cost a
whole prompt evaluation each time. So a document's preamble is computed once and kept until the
ring or a file behind it changes (an open, a save, a switch of file, a workspace file read in
the background) or the cursor moves far (`RECOMPUTE_LINES`); typing in the file changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hintwise.lsp_server.code import definitions as code_definitions
from hintwise.lsp_server.code.documents import Document, uri_path

RING_CHUNKS = 16
CHUNK_LINES = 64
# A chunk this similar to a new one is evicted by it (llama.vim: 0.9) ...
EVICT_SIMILARITY = 0.9
# ... and one this similar to the code around the cursor is left out of the prompt (0.5).
SKIP_SIMILARITY = 0.5
# The cursor moving further than this (lines) from where the preamble was made remakes it.
RECOMPUTE_LINES = 48
# Characters per model token, to size the preamble without a tokenizer (code runs 3-4).
CHARS_PER_TOKEN = 3
# Workspace files kept parsed (their definitions), at most.
MAX_CACHED_FILES = 256

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Chunk:
    path: str  # as shown in the prompt (relative to the workspace root when under it)
    text: str


def similarity(a: str, b: str) -> float:
    """llama.vim's chunk similarity: 2 × (words of `b` found in `a`) / (words of both)."""
    words_a, words_b = _WORD.findall(a), _WORD.findall(b)
    if not words_a and not words_b:
        return 1.0
    known = set(words_a)
    common = sum(1 for word in words_b if word in known)
    return 2.0 * common / (len(words_a) + len(words_b))


def lines_around(text: str, line: int, count: int = CHUNK_LINES) -> str:
    """Up to `count` lines of `text` centred on `line` (0-based)."""
    lines = text.splitlines()
    start = max(0, min(line - count // 2, len(lines) - count))
    return "\n".join(lines[start : start + count])


@dataclass
class Ring:
    """Recently viewed chunks, oldest first; `generation` counts its changes."""

    size: int = RING_CHUNKS
    chunks: list[Chunk] = field(default_factory=list)
    generation: int = 0

    def add(self, chunk: Chunk) -> bool:
        """Add a chunk (see the module docstring); True when the ring changed."""
        if sum(1 for line in chunk.text.splitlines() if line.strip()) < 3:
            return False
        if chunk in self.chunks:
            return False
        self.chunks = [
            old for old in self.chunks if similarity(old.text, chunk.text) <= EVICT_SIMILARITY
        ]
        self.chunks.append(chunk)
        del self.chunks[: max(0, len(self.chunks) - self.size)]
        self.generation += 1
        return True


@dataclass(frozen=True)
class _Made:
    generation: int
    line: int
    text: str


def comment_marker(language_id: str) -> str:
    return "#" if language_id in ("python", "plaintext", "shellscript", "ruby") else "//"


class Project:
    """The ring, the workspace roots and the documents' preambles (one per server).

    `open_text(path)` gives the text of an open document at a path (None when not open);
    `schedule(job)` runs a workspace read off the event loop (None: read inline, for the CLI
    and benchmarks, which have no loop to protect).
    """

    def __init__(
        self,
        open_text: Callable[[Path], str | None] = lambda path: None,
        schedule: Callable[[Callable[[], None]], None] | None = None,
    ):
        self.ring = Ring()
        self.roots: list[Path] = []
        self.open_text = open_text
        self.schedule = schedule
        self.files_changed = 0  # bumped when a workspace file was read or a document saved
        self._files: dict[Path, dict[str, str] | None] = {}
        self._pending: set[Path] = set()
        self._made: dict[str, _Made] = {}
        self._lines: dict[str, int] = {}  # where the cursor was last seen, per document
        self._current: Document | None = None

    @property
    def generation(self) -> int:
        return self.ring.generation + self.files_changed

    # -- events ----------------------------------------------------------------------------

    def shown_path(self, uri: str) -> str:
        path = uri_path(uri)
        if path is None:
            return uri
        for root in self.roots:
            if path.is_relative_to(root):
                return path.relative_to(root).as_posix()
        return "/".join(path.parts[-2:])

    def _pick(self, document: Document) -> None:
        line = self._lines.get(document.uri, 0)
        self.ring.add(Chunk(self.shown_path(document.uri), lines_around(document.text, line)))

    def opened(self, document: Document) -> None:
        """A file was opened (viewed): a chunk of its top."""
        self._lines.setdefault(document.uri, 0)
        self._pick(document)

    def saved(self, document: Document) -> None:
        """A file was saved: a chunk around the cursor, and its definitions are read anew."""
        self._pick(document)
        path = uri_path(document.uri)
        if path is not None:
            self._files.pop(path, None)
        self.files_changed += 1

    def closed(self, document: Document) -> None:
        self._pick(document)
        self._made.pop(document.uri, None)
        self._lines.pop(document.uri, None)
        if self._current is document:
            self._current = None

    def visited(self, document: Document, offset: int) -> None:
        """The cursor is at `offset` of `document` (a request or a cursor notification): leaving
        another file for this one adds a chunk of where the user was in the other file."""
        if self._current is not None and self._current.uri != document.uri:
            self._pick(self._current)
        self._current = document
        self._lines[document.uri] = document.text.count("\n", 0, offset)

    # -- the preamble ----------------------------------------------------------------------

    def preamble(self, document: Document, offset: int, budget_tokens: int) -> str:
        """The text to put before `document`'s prompt window at `offset` (see the module
        docstring for when it changes)."""
        if budget_tokens <= 0:
            return ""
        self.visited(document, offset)
        line = self._lines[document.uri]
        made = self._made.get(document.uri)
        fresh = made is not None and made.generation == self.generation
        if made is not None and fresh and abs(made.line - line) <= RECOMPUTE_LINES:
            return made.text
        text = self._make(document, offset, budget_tokens * CHARS_PER_TOKEN)
        self._made[document.uri] = _Made(self.generation, line, text)
        return text

    def _make(self, document: Document, offset: int, budget_chars: int) -> str:
        marker = comment_marker(document.language_id)
        definitions = ""
        if document.language_id == "python":
            definitions = self._definitions_text(document, offset, budget_chars, marker)
        room = budget_chars - len(definitions)
        around = lines_around(document.text, self._lines.get(document.uri, 0))
        chosen: list[str] = []
        for chunk in reversed(self.ring.chunks):
            if similarity(around, chunk.text) > SKIP_SIMILARITY:
                continue
            block = f"{marker} path: {chunk.path}\n{chunk.text}\n\n"
            if len(block) > room:
                break
            chosen.append(block)
            room -= len(block)
        return "".join(reversed(chosen)) + definitions

    def _definitions_text(
        self, document: Document, offset: int, budget_chars: int, marker: str
    ) -> str:
        """Definitions of imported names, grouped by file, the nearest-used names last."""
        path = uri_path(document.uri)
        if path is None:
            return ""
        found = self.imported_definitions(document.text, path)
        ranked = sorted(found, key=lambda item: _distance(document.text, offset, item[0]))
        groups: dict[Path, list[str]] = {}
        used = 0
        for _, source, text in ranked:
            cost = len(text) + 2 + (0 if source in groups else 40)
            if used + cost > budget_chars:
                continue
            groups.setdefault(source, []).insert(0, text)
            used += cost
        blocks = [
            f"{marker} path: {self.shown_path(source.as_uri())}\n" + "\n\n".join(texts) + "\n\n"
            for source, texts in groups.items()
        ]
        return "".join(reversed(blocks))

    def imported_definitions(self, source_text: str, path: Path) -> list[tuple[str, Path, str]]:
        """(name used in the file, defining file, definition text) for each `from … import`
        whose module is a file of the project (a module imported by name gives the
        definitions of the attributes the file uses, `module.attr`)."""
        found: list[tuple[str, Path, str]] = []
        seen: set[tuple[str, Path]] = set()
        for entry in code_definitions.imports(source_text):
            module = resolve_module(entry.module, entry.level, path, self.roots)
            submodule = resolve_module(
                _join(entry.module, entry.name), entry.level, path, self.roots
            )
            if submodule is not None:
                for attr in _attributes(source_text, entry.alias):
                    self._add(found, seen, f"{entry.alias}.{attr}", submodule, attr)
            elif module is not None:
                self._add(found, seen, entry.alias, module, entry.name, hops=1)
        return found

    def _add(
        self,
        found: list[tuple[str, Path, str]],
        seen: set[tuple[str, Path]],
        used: str,
        module: Path,
        name: str,
        hops: int = 0,
    ) -> None:
        if (name, module) in seen:
            return
        seen.add((name, module))
        definitions = self.definitions_of(module)
        if definitions is None:
            return
        if name in definitions:
            found.append((used, module, definitions[name]))
            return
        if hops <= 0:
            return
        for entry in code_definitions.imports(self._text_of(module) or ""):
            if entry.alias == name:  # re-exported (e.g. a package's __init__): one hop on
                target = resolve_module(entry.module, entry.level, module, self.roots)
                if target is not None:
                    self._add(found, seen, used, target, entry.name, hops - 1)

    def _text_of(self, path: Path) -> str | None:
        text = self.open_text(path)
        if text is not None:
            return text
        try:
            if path.stat().st_size > code_definitions.MAX_SOURCE_BYTES:
                return None
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    def definitions_of(self, path: Path) -> dict[str, str] | None:
        """The definitions in a file: from the open document, else from the workspace file
        (read in the background when there is a loop to protect: None until then)."""
        text = self.open_text(path)
        if text is not None:
            return code_definitions.definitions(text)
        if path in self._files:
            return self._files[path]
        if self.schedule is None:
            self._read(path)
            return self._files.get(path)
        if path not in self._pending:
            self._pending.add(path)
            self.schedule(lambda: self._read(path, notify=True))
        return None

    def _read(self, path: Path, notify: bool = False) -> None:
        text = self._text_of(path)
        if len(self._files) >= MAX_CACHED_FILES:
            self._files.clear()
        self._files[path] = code_definitions.definitions(text) if text is not None else None
        self._pending.discard(path)
        if notify:
            self.files_changed += 1


def _join(module: str, name: str) -> str:
    return f"{module}.{name}" if module else name


def _attributes(text: str, alias: str) -> list[str]:
    """Attributes used on a module alias (`alias.attr`), in order of first use."""
    seen: dict[str, None] = {}
    for match in re.finditer(rf"\b{re.escape(alias)}\.(\w+)", text):
        seen.setdefault(match.group(1), None)
    return list(seen)


def _distance(text: str, offset: int, used: str) -> int:
    """Characters from `offset` to the nearest use of `used` outside import lines (far for a
    name used nowhere else)."""
    best = len(text) + 1
    for match in re.finditer(rf"(?<![\w.]){re.escape(used)}\b", text):
        line_start = text.rfind("\n", 0, match.start()) + 1
        if text.startswith(("from ", "import "), line_start):
            continue
        best = min(best, abs(match.start() - offset))
    return best


def resolve_module(module: str, level: int, importer: Path, roots: list[Path]) -> Path | None:
    """The file of a module imported from `importer`: relative to it (level > 0), or under a
    workspace root or the root of the importer's own package; None when it is not there
    (the standard library, third-party packages)."""
    parts = [part for part in module.split(".") if part]
    if level > 0:
        base = importer.parent
        for _ in range(level - 1):
            base = base.parent
        bases = [base]
    else:
        bases = [*roots, _package_root(importer)]
    for base in bases:
        candidate = base.joinpath(*parts) if parts else base
        for path in (candidate.with_suffix(".py"), candidate / "__init__.py"):
            if (parts or path.name == "__init__.py") and path.is_file():
                return path
    return None


def _package_root(path: Path) -> Path:
    """The folder holding the top package of `path` (its parent while it has __init__.py)."""
    folder = path.parent
    while (folder / "__init__.py").is_file() and folder.parent != folder:
        folder = folder.parent
    return folder
