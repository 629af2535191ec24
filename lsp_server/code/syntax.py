"""Tree-sitter parsing of open documents: which grammar, an incremental tree, the state at a cursor.

Grammars come from the per-language wheels (tree-sitter-python, …), which carry compiled parsers,
so nothing is fetched at run time. A document is reparsed incrementally from its previous tree
(about 1 ms after a keystroke on a 2,000-line file); documents in languages without a grammar,
or too large to be worth parsing, are handled by line rules instead (`tree` is None).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import cache

from tree_sitter import Language, Node, Parser, Tree

# languageId (LSP) → (module, function returning the language pointer)
_GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "javascriptreact": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "typescriptreact": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
}

EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascriptreact",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "typescriptreact",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".hxx": "cpp",
}

# Languages whose blocks are delimited by indentation rather than braces.
INDENT_BLOCK_LANGUAGES = {"python"}

# Above this size a document is handled by line rules: a first parse of a multi-megabyte file
# costs more than the completion it would improve.
MAX_PARSE_BYTES = 1_000_000


class CodeError(ValueError):
    """A file that cannot be analysed here (no grammar for its language, or too large); the
    message says which."""


def language_for_path(path: str) -> str:
    """LSP languageId for a file name, or 'plaintext'."""
    lowered = path.lower()
    for extension, language in EXTENSIONS.items():
        if lowered.endswith(extension):
            return language
    return "plaintext"


@cache
def grammar(language_id: str) -> Language | None:
    """The tree-sitter language for a languageId, or None when no grammar wheel provides it."""
    spec = _GRAMMARS.get(language_id)
    if spec is None:
        return None
    module_name, function = spec
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return Language(getattr(module, function)())


def installed_grammars() -> dict[str, str]:
    """languageId → grammar package version, for `hintwise doctor`."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for language_id, (module_name, _) in _GRAMMARS.items():
        if grammar(language_id) is None:
            continue
        try:
            found[language_id] = version(module_name.replace("_", "-"))
        except PackageNotFoundError:
            found[language_id] = "?"
    return found


def parse(text: str, language_id: str) -> Tree:
    """A fresh parse of a whole file; CodeError when its language has no grammar or it is too
    large to be worth it. A file with syntax errors still parses: tree-sitter recovers."""
    language = grammar(language_id)
    if language is None:
        raise CodeError(f"no tree-sitter grammar for language {language_id!r}")
    if len(text) > MAX_PARSE_BYTES:
        raise CodeError(
            f"the file is too large to review ({len(text):,} characters; "
            f"the limit is {MAX_PARSE_BYTES:,})"
        )
    return Parser(language).parse(text.encode("utf-8", errors="surrogatepass"))


def _common_prefix_length(a: str, b: str) -> int:
    """Length of the common prefix, by bisection on slice equality (memcmp speed, not a loop)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _common_suffix_length(a: str, b: str, limit: int) -> int:
    low, high = 0, min(len(a), len(b), limit)
    while low < high:
        middle = (low + high + 1) // 2
        if a[len(a) - middle :] == b[len(b) - middle :]:
            low = middle
        else:
            high = middle - 1
    return low


def _point(text: str, offset: int) -> tuple[int, int]:
    """Tree-sitter point (row, byte column) of a character offset."""
    row = text.count("\n", 0, offset)
    line_start = text.rfind("\n", 0, offset) + 1
    return row, len(text[line_start:offset].encode("utf-8", errors="surrogatepass"))


@dataclass
class DocumentSyntax:
    """One document's tree, kept in step with its text by incremental reparsing.

    `update` takes the whole new text and works out the edited span itself, so it does not matter
    how many didChange events (or which position encoding) produced it.
    """

    language_id: str
    text: str = ""
    tree: Tree | None = None
    _parser: Parser | None = field(default=None, repr=False)

    def update(self, text: str) -> Tree | None:
        language = grammar(self.language_id)
        if language is None or len(text) > MAX_PARSE_BYTES:
            self.text, self.tree = text, None
            return None
        if self._parser is None:
            self._parser = Parser(language)
        old_text, old_tree = self.text, self.tree
        if old_tree is not None and text == old_text:
            return old_tree
        encoded = text.encode("utf-8", errors="surrogatepass")
        if old_tree is not None:
            start = _common_prefix_length(old_text, text)
            tail = _common_suffix_length(old_text, text, min(len(old_text), len(text)) - start)
            old_end, new_end = len(old_text) - tail, len(text) - tail
            start_byte = len(old_text[:start].encode("utf-8", errors="surrogatepass"))
            old_tree.edit(
                start_byte=start_byte,
                old_end_byte=start_byte
                + len(old_text[start:old_end].encode("utf-8", errors="surrogatepass")),
                new_end_byte=start_byte
                + len(text[start:new_end].encode("utf-8", errors="surrogatepass")),
                start_point=_point(old_text, start),
                old_end_point=_point(old_text, old_end),
                new_end_point=_point(text, new_end),
            )
            self.tree = self._parser.parse(encoded, old_tree)
        else:
            self.tree = self._parser.parse(encoded)
        self.text = text
        return self.tree

    def parse_variant(self, text: str) -> Tree | None:
        """Parse a what-if version of the document (a suggestion inserted) without keeping it."""
        language = grammar(self.language_id)
        if language is None or len(text) > MAX_PARSE_BYTES:
            return None
        return Parser(language).parse(text.encode("utf-8", errors="surrogatepass"))

    def edited_variant(self, start: int, end: int, replacement: str) -> Tree | None:
        """A what-if tree of the current text with characters `start:end` replaced, reparsed
        incrementally from a copy of the current tree: a few hundred microseconds where a full
        parse of a long file takes milliseconds, so a suggestion can be tried several ways."""
        if self.tree is None or self._parser is None:
            return None
        old = self.text
        new = old[:start] + replacement + old[end:]
        start_byte = len(old[:start].encode("utf-8", errors="surrogatepass"))
        tree = self.tree.copy()
        tree.edit(
            start_byte=start_byte,
            old_end_byte=start_byte + len(old[start:end].encode("utf-8", errors="surrogatepass")),
            new_end_byte=start_byte + len(replacement.encode("utf-8", errors="surrogatepass")),
            start_point=_point(old, start),
            old_end_point=_point(old, end),
            new_end_point=_point(new, start + len(replacement)),
        )
        return self._parser.parse(new.encode("utf-8", errors="surrogatepass"), tree)


def count_errors(node: Node) -> int:
    """ERROR and MISSING nodes under `node`, visiting only subtrees that contain errors."""
    if not node.has_error and not node.is_missing:
        return 0
    if node.is_error or node.is_missing:
        return 1 + sum(count_errors(child) for child in node.children)
    return sum(count_errors(child) for child in node.children)


_STRING_MARKERS = ("string", "char_literal", "character_literal", "text_block")
_CODE_INSIDE_STRING = {"interpolation", "template_substitution", "format_expression"}


@dataclass(frozen=True)
class SyntaxState:
    """What tree-sitter says about the cursor position."""

    in_comment: bool = False
    in_string: bool = False
    node_kinds: tuple[str, ...] = ()  # innermost first, at most five
    has_error: bool = False


def state_at(tree: Tree | None, byte_offset: int) -> SyntaxState:
    """Syntax state at a byte offset; a default (all False) state without a tree."""
    if tree is None:
        return SyntaxState()
    root = tree.root_node
    node = root.descendant_for_byte_range(max(byte_offset - 1, 0), byte_offset)
    kinds: list[str] = []
    in_comment = in_string = False
    walker = node
    while walker is not None:
        kind = walker.type
        if len(kinds) < 5 and walker.is_named:
            kinds.append(kind)
        if kind in _CODE_INSIDE_STRING:
            break
        inside = walker.start_byte < byte_offset < walker.end_byte
        if "comment" in kind and walker.start_byte < byte_offset <= walker.end_byte:
            in_comment = True
        elif any(marker in kind for marker in _STRING_MARKERS) and inside:
            in_string = True
        walker = walker.parent
    return SyntaxState(in_comment, in_string, tuple(kinds), root.has_error)
